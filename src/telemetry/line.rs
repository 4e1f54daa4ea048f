//! A JSON object written member by member straight into its text, for the lines built on every
//! invocation (the summary and the audit line): a `serde_json::Value` tree, with a map node and
//! an owned key per member, cost more than all the rest of the handler's own work on a warm call.

use serde::Serialize;

/// Room for a whole summary or audit line, so that building one allocates once.
const CAPACITY: usize = 1024;

/// A JSON object under construction; [`JsonLine::finish`] closes it.
pub struct JsonLine {
    text: Vec<u8>,
}

impl Default for JsonLine {
    fn default() -> Self {
        let mut text = Vec::with_capacity(CAPACITY);
        text.push(b'{');
        Self { text }
    }
}

impl JsonLine {
    /// Adds the member `name`: `value`. Names are the code's own and each written once.
    pub fn member(&mut self, name: &str, value: impl Serialize) {
        if self.text.len() > 1 {
            self.text.push(b',');
        }
        write(&mut self.text, &name);
        self.text.push(b':');
        write(&mut self.text, &value);
    }

    /// Adds the member `name` when there is a `value`; a line leaves out what it does not know
    /// rather than writing `null`.
    pub fn member_if(&mut self, name: &str, value: Option<impl Serialize>) {
        if let Some(value) = value {
            self.member(name, value);
        }
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.text.push(b'}');
        // serde_json writes UTF-8, and the braces and separators are ASCII.
        String::from_utf8(self.text).unwrap_or_default()
    }
}

fn write(out: &mut Vec<u8>, value: &impl Serialize) {
    // Into a `Vec`, serde_json fails only on a map whose keys are not strings, which no line
    // holds: strings, numbers, booleans and the derived structures of `emf`.
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn members_are_escaped_and_absent_ones_left_out() {
        let mut line = JsonLine::default();
        line.member("quote", "a \"b\"\n");
        line.member("n", 12.5);
        line.member_if("gone", None::<&str>);
        line.member_if("here", Some(true));
        let text = line.finish();
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            value,
            json!({ "quote": "a \"b\"\n", "n": 12.5, "here": true })
        );
        assert_eq!(JsonLine::default().finish(), "{}");
    }
}
