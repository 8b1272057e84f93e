//! The one dialog that may be open over the console (`State::modal`). While it is open, keys go to
//! it (update's `on_typed`), it is drawn over the view (ui's `render`), and keys typed before it was
//! drawn are dropped (`mark`): each of these is one match over `Modal`, so a new dialog is one new
//! arm in each. Each feature reads its own dialog through State's accessors (state.rs).

use crate::app::edit::Dialog;
use crate::app::members::MemberDialog;
use crate::app::restore::RestoreWizard;
use crate::app::snapshot::SnapshotDialog;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    /// A write of the key browser waiting for the user's yes (or for etcd's answer).
    Keys(Dialog),
    /// A member maintenance operation, an auth change or a member's replacement.
    Member(MemberDialog),
    /// A snapshot being saved, or what its verification found, until dismissed.
    Snapshot(SnapshotDialog),
    /// The restore wizard.
    Restore(RestoreWizard),
}

impl Modal {
    /// Which dialog and which question it asks, as a mark that changes whenever the user is asked
    /// something new (not when text is typed into it).
    pub fn mark(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        use std::mem::discriminant;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match self {
            Modal::Keys(d) => {
                (1u8, discriminant(d)).hash(&mut h);
                if let Dialog::Confirm { typed, .. } = d {
                    typed.is_some().hash(&mut h);
                }
            }
            Modal::Member(m) => {
                (2u8, discriminant(m)).hash(&mut h);
                match m {
                    MemberDialog::Confirm { op, deliberate, .. } => (op.describe(), deliberate).hash(&mut h),
                    MemberDialog::Replace(r) => (r.confirmed, r.finished()).hash(&mut h),
                    MemberDialog::Running { .. } | MemberDialog::Result { .. } => {}
                }
            }
            Modal::Snapshot(s) => (3u8, discriminant(s)).hash(&mut h),
            Modal::Restore(r) => (4u8, discriminant(r)).hash(&mut h),
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::members::MemberOp;

    #[test]
    fn the_mark_changes_with_the_question_not_with_progress() {
        let op = MemberOp::Remove { id: 7, name: "n1".into() };
        let confirm =
            Modal::Member(MemberDialog::Confirm { op: op.clone(), notes: Vec::new(), deliberate: false });
        let deliberate =
            Modal::Member(MemberDialog::Confirm { op: op.clone(), notes: Vec::new(), deliberate: true });
        let running = |progress: Vec<String>| {
            Modal::Member(MemberDialog::Running { request: 1, op: op.clone(), progress })
        };
        assert_ne!(confirm.mark(), deliberate.mark());
        assert_ne!(confirm.mark(), running(Vec::new()).mark());
        assert_eq!(running(Vec::new()).mark(), running(vec!["n1 done".into()]).mark());
        let counting = Modal::Keys(Dialog::Counting { request: 1, prefix: Vec::new() });
        assert_ne!(counting.mark(), running(Vec::new()).mark());
    }
}
