//! A small incremental Server-Sent Events parser (the WHATWG event-stream format as OpenAI
//! servers use it): bytes in, the `data` of each complete event out. Lines end in `\n`,
//! `\r\n` or `\r`; `:` lines are comments; several `data:` lines join with `\n`; other fields
//! (`event`, `id`, `retry`) are ignored. No allocation per event beyond the data itself.

/// Incremental parser; feed it bytes as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Start of the unparsed part of `buf`.
    pos: usize,
    data: Vec<u8>,
    has_data: bool,
    /// The previous chunk ended in `\r`: a `\n` starting the next one ends no new line.
    skip_lf: bool,
}

impl SseParser {
    /// An empty parser.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Adds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 4096 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held for an event not yet complete (unparsed input plus data lines so far): a
    /// peer that never ends a line or an event makes this grow, so callers cap it.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len() - self.pos + self.data.len()
    }

    /// The data of the next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_lf = false;
            }
            let rest = &self.buf[self.pos..];
            let end = rest.iter().position(|&b| b == b'\n' || b == b'\r')?;
            let line_end = self.pos + end;
            let cr = self.buf[line_end] == b'\r';
            let mut next = line_end + 1;
            if cr {
                if next < self.buf.len() {
                    if self.buf[next] == b'\n' {
                        next += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            let (start, stop) = (self.pos, line_end);
            self.pos = next;
            if start == stop {
                // Blank line: dispatch.
                if self.has_data {
                    self.has_data = false;
                    return Some(std::mem::take(&mut self.data));
                }
                continue;
            }
            self.field(start, stop);
        }
    }

    fn field(&mut self, start: usize, stop: usize) {
        let line = &self.buf[start..stop];
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &line[..0]),
        };
        if name == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
    }

    /// At the end of the stream: an event whose blank line never came (lenient; the spec
    /// drops it, but some servers end without the final blank line).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.pos < self.buf.len() {
            let (start, stop) = (self.pos, self.buf.len());
            self.pos = stop;
            self.field(start, stop);
        }
        self.has_data.then(|| {
            self.has_data = false;
            std::mem::take(&mut self.data)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c);
            while let Some(e) = p.next_event() {
                out.push(String::from_utf8(e).unwrap());
            }
        }
        out.extend(p.finish().map(|e| String::from_utf8(e).unwrap()));
        out
    }

    #[test]
    fn events_split_anywhere() {
        let text = b"data: {\"a\":1}\n\n: keep-alive\n\nevent: x\ndata: two\ndata: lines\n\ndata:[DONE]\n\n";
        let whole = all(&[text]);
        assert_eq!(whole, vec!["{\"a\":1}", "two\nlines", "[DONE]"]);
        // every split point gives the same events
        for i in 0..text.len() {
            assert_eq!(all(&[&text[..i], &text[i..]]), whole, "split at {i}");
        }
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        assert_eq!(
            all(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            all(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]),
            vec!["a", "b"]
        );
    }

    #[test]
    fn unterminated_last_event_and_garbage() {
        assert_eq!(all(&[b"data: x\n\ndata: y"]), vec!["x", "y"]);
        // a line without a colon is a field name with no value; not data
        assert_eq!(all(&[b"garbage\n\n"]), Vec::<String>::new());
        assert_eq!(all(&[b"data\n\n"]), vec![""]);
    }
}
