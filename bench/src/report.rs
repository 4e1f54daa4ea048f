//! How figures are printed: each with its target and PASS or MISS, and a closing table of every
//! target (Markdown, to paste into the README).

/// The figures printed so far that have a target.
#[derive(Debug, Default)]
pub struct Report {
    checked: Vec<Checked>,
}

#[derive(Debug)]
struct Checked {
    figure: String,
    value: String,
    target: String,
    pass: bool,
}

impl Report {
    /// Starts a section: what is measured and how.
    pub fn section(&self, title: &str, method: &str) {
        println!("\n== {title}\n   ({method})");
    }

    /// A figure without a target.
    pub fn info(&self, figure: &str, value: impl std::fmt::Display) {
        println!("   {figure:<52} {value}");
    }

    /// A figure with a target, and whether it meets it.
    pub fn check(&mut self, figure: &str, value: impl std::fmt::Display, target: &str, pass: bool) {
        let value = value.to_string();
        let verdict = if pass { "PASS" } else { "MISS" };
        println!("   {figure:<52} {value:<22} target {target:<10} {verdict}");
        self.checked.push(Checked {
            figure: figure.to_owned(),
            value,
            target: target.to_owned(),
            pass,
        });
    }

    /// A figure that could not be measured: counted as a miss.
    pub fn failed(&mut self, figure: &str, why: &str) {
        println!("   {figure:<52} not measured: {why}");
        self.checked.push(Checked {
            figure: figure.to_owned(),
            value: format!("not measured ({why})"),
            target: "-".to_owned(),
            pass: false,
        });
    }

    /// Prints every checked figure as a Markdown table; true if all met their targets.
    pub fn summary(&self) -> bool {
        println!("\n== Summary\n");
        println!("| figure | measured | target | |");
        println!("|---|---|---|---|");
        for c in &self.checked {
            let verdict = if c.pass { "PASS" } else { "MISS" };
            println!("| {} | {} | {} | {verdict} |", c.figure, c.value, c.target);
        }
        self.checked.iter().all(|c| c.pass)
    }
}

/// Microseconds, e.g. `412 µs`.
pub fn micros(value: f64) -> String {
    format!("{value:.1} µs")
}

/// Milliseconds from microseconds, e.g. `12.3 ms`.
pub fn millis(micros: f64) -> String {
    format!("{:.1} ms", micros / 1e3)
}

/// Bytes in decimal megabytes, e.g. `9.87 MB (9,870,123 B)`.
pub fn megabytes(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{:.2} MB ({grouped} B)", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabytes_are_decimal_with_grouped_bytes() {
        assert_eq!(megabytes(10_404_584), "10.40 MB (10,404,584 B)");
        assert_eq!(megabytes(999), "0.00 MB (999 B)");
    }
}
