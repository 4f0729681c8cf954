//! Incremental detokenization: the text each new token adds, at a cost that does not grow
//! with the output (decoding the whole output at every token made a long generation
//! quadratic). The method of TGI and vLLM: decode a short window of recent tokens twice —
//! without and with the new ones — and emit the difference, once it no longer ends in an
//! incomplete character; the window keeps one token of context before the new text so that
//! decoders which treat a leading space specially (SentencePiece's `▁`) see it in place.

use tokenizers::Tokenizer;

/// Where the text of a sequence stands.
#[derive(Debug, Default, Clone)]
pub struct Detok {
    /// Start of the context window.
    prefix: usize,
    /// Tokens whose text has been emitted.
    read: usize,
}

impl Detok {
    /// The text that `ids` (all generated tokens so far; the last ones new) add to what was
    /// emitted before; empty while the new bytes do not yet form a whole character.
    /// Special tokens are decoded as text (every token is visible to the client).
    pub fn next(&mut self, tok: &Tokenizer, ids: &[u32]) -> String {
        let before = tok
            .decode(&ids[self.prefix..self.read], false)
            .unwrap_or_default();
        let after = tok.decode(&ids[self.prefix..], false).unwrap_or_default();
        if after.len() > before.len()
            && after.is_char_boundary(before.len())
            && after.starts_with(before.as_str())
            && !after.ends_with('\u{fffd}')
        {
            self.prefix = self.read;
            self.read = ids.len();
            after[before.len()..].to_string()
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::decoders::byte_level::ByteLevel;
    use tokenizers::models::bpe::{Vocab, BPE};

    /// A byte-level BPE with one token per byte (GPT-2's byte-to-character map).
    fn bytes_tokenizer() -> Tokenizer {
        let chars = ByteLevel::alphabet();
        let mut chars: Vec<char> = chars.into_iter().collect();
        chars.sort_unstable();
        let vocab: Vocab = chars
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, vec![])
            .build()
            .unwrap();
        let mut t = Tokenizer::new(bpe);
        t.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
        t.with_decoder(Some(ByteLevel::default()));
        t
    }

    #[test]
    fn pieces_add_up_to_the_whole_and_never_split_a_character() {
        let tok = bytes_tokenizer();
        let text = "héllo wörld 👋 — ok";
        let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert!(
            ids.len() > text.chars().count(),
            "multi-byte characters span tokens"
        );
        let mut d = Detok::default();
        let mut out = String::new();
        let mut empties = 0;
        for n in 1..=ids.len() {
            let piece = d.next(&tok, &ids[..n]);
            empties += piece.is_empty() as usize;
            out.push_str(&piece);
        }
        assert_eq!(out, text);
        // One empty piece per continuation byte of the multi-byte characters.
        let continuation: usize = text.chars().map(|c| c.len_utf8() - 1).sum();
        assert_eq!(empties, continuation);
    }
}
