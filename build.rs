// etcd-client's build script finds protoc through PROTOC (set in .cargo/config.toml); this build script
// only makes sure the vendored protoc exists for this platform, so a missing one fails with its name.
fn main() {
    if let Err(e) = protoc_bin_vendored::protoc_bin_path() {
        println!("cargo:warning=no vendored protoc for this platform ({e}); set PROTOC to a protoc binary");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
