//! A small RFC 4180 CSV reader: comma-separated fields, `"quoted, fields"` with `""` for a
//! quote and line breaks inside quotes, LF or CRLF line ends, a leading UTF-8 BOM ignored,
//! blank lines skipped. Enough for tables copied from papers and spreadsheets, without a
//! dependency.

/// Records with the 1-based line number each starts on.
pub fn parse(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut start_line = 1;
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut quoted = false; // the current field was quoted (text after the quote is an error)
    let mut any = false; // the current record has content
    let end_record = |record: &mut Vec<String>,
                      field: &mut String,
                      any: &mut bool,
                      out: &mut Vec<(usize, Vec<String>)>,
                      start: usize| {
        record.push(std::mem::take(field));
        let r = std::mem::take(record);
        if *any {
            out.push((start, r));
        }
        *any = false;
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                record.push(std::mem::take(&mut field));
                quoted = false;
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut record, &mut field, &mut any, &mut out, start_line);
                quoted = false;
                line += 1;
                start_line = line;
            }
            '"' if field.trim().is_empty() && !quoted => {
                field.clear();
                in_quotes = true;
                quoted = true;
                any = true;
            }
            _ if quoted && !c.is_whitespace() => {
                return Err(format!(
                    "line {line}: text after the closing quote of a field"
                ));
            }
            _ => {
                if !c.is_whitespace() || !quoted {
                    field.push(c);
                }
                any = true;
            }
        }
    }
    if in_quotes {
        return Err(format!("line {start_line}: a quoted field is never closed"));
    }
    end_record(&mut record, &mut field, &mut any, &mut out, start_line);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text).unwrap().into_iter().map(|(_, r)| r).collect()
    }

    #[test]
    fn plain_quoted_crlf_bom_and_blank_lines() {
        let t = "\u{feff}name,a\r\n\"x, y\",1\r\n\r\n\"say \"\"hi\"\"\",2\n";
        assert_eq!(
            fields(t),
            vec![
                vec!["name".to_string(), "a".into()],
                vec!["x, y".into(), "1".into()],
                vec!["say \"hi\"".into(), "2".into()],
            ]
        );
        let lines: Vec<usize> = parse(t).unwrap().iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 4]);
    }

    #[test]
    fn newline_inside_quotes_and_empty_fields() {
        let t = "a,b,c\n\"two\nlines\",,3";
        let r = parse(t).unwrap();
        assert_eq!(r[1].0, 2);
        assert_eq!(
            r[1].1,
            vec!["two\nlines".to_string(), "".into(), "3".into()]
        );
    }

    #[test]
    fn malformed_quotes_are_reported_with_the_line() {
        assert!(parse("a\n\"open,1\n").unwrap_err().contains("line 2"));
        assert!(parse("a,b\n\"x\"y,1\n")
            .unwrap_err()
            .contains("line 2: text after the closing quote"));
    }
}
