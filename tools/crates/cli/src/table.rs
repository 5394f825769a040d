//! Plain-text tables: left-aligned columns separated by two spaces.

/// Renders rows under a header, padding each column to its widest cell (in characters,
/// so ✔ and ✘ line up).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().take(columns).enumerate() {
            if i + 1 < columns {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_on_characters_not_bytes() {
        let rows = vec![
            vec!["✔".to_string(), "lb".to_string()],
            vec!["no".to_string(), "web1".to_string()],
        ];
        assert_eq!(
            super::render(&["OK", "HOST"], &rows),
            "OK  HOST\n✔   lb\nno  web1\n"
        );
    }
}
