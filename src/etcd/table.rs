//! etcdctl's table output (`-w table`): `+---+` rules, centred headers, one row a line.

/// etcdctl's table style: `+---+` rules, centred headers, left-aligned cells.
pub fn boxed_table(header: &[&str], rows: &[Vec<String>]) -> String {
    boxed_table_aligned(header, rows, false)
}

/// As `boxed_table`, with cells right-aligned when `right` (etcdctl's snapshot status table).
pub fn boxed_table_aligned(header: &[&str], rows: &[Vec<String>], right: bool) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let rule: String = widths.iter().map(|w| format!("+{}", "-".repeat(w + 2))).collect::<String>() + "+\n";
    let mut out = rule.clone();
    for (i, h) in header.iter().enumerate() {
        out.push_str(&format!("| {:^w$} ", h, w = widths[i]));
    }
    out.push_str("|\n");
    out.push_str(&rule);
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if right {
                out.push_str(&format!("| {:>w$} ", cell, w = widths[i]));
            } else {
                out.push_str(&format!("| {:<w$} ", cell, w = widths[i]));
            }
        }
        out.push_str("|\n");
    }
    out.push_str(&rule);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_etcdctls() {
        let rows =
            vec![vec!["8e9e05c52164694d".to_string(), "default".into()], vec!["1".into(), "n2".into()]];
        assert_eq!(
            boxed_table(&["ID", "NAME"], &rows),
            "+------------------+---------+\n\
             |        ID        |  NAME   |\n\
             +------------------+---------+\n\
             | 8e9e05c52164694d | default |\n\
             | 1                | n2      |\n\
             +------------------+---------+\n"
        );
        let right =
            boxed_table_aligned(&["HASH", "TOTAL KEYS"], &[vec!["fe01cf57".into(), "7".into()]], true);
        assert!(right.contains("| fe01cf57 |          7 |"), "{right}");
    }
}
