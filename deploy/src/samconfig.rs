//! `samconfig.toml`: the stack's name, region and parameters, written by setup for
//! `sam deploy` and read back by check. It holds no secret: the credentials are in Secrets
//! Manager, named by `CredentialsSecretArn`.
//!
//! Written and read here without a TOML library: setup writes a fixed shape of basic strings,
//! and `parameter_overrides` is SAM's own `Key="value"` list, whose quoting SAM undoes by
//! replacing `\"` with `"` (samcli/cli/types.py `_unquote_wrapped_quotes`).

use std::collections::BTreeMap;

/// The file's content: the `[default.deploy.parameters]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SamConfig {
    /// `stack_name`.
    pub stack_name: String,
    /// `region`.
    pub region: String,
    /// `parameter_overrides`, by template parameter.
    pub parameters: BTreeMap<String, String>,
}

impl SamConfig {
    /// The file's text.
    pub fn render(&self) -> String {
        let overrides: Vec<String> = self
            .parameters
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", value.replace('"', "\\\"")))
            .collect();
        format!(
            "# Written by `cargo run -p deploy -- setup` (docs/deploy.md). No secret here: the\n\
             # credentials are in the Secrets Manager secret named by CredentialsSecretArn.\n\
             version = 0.1\n\n\
             [default.deploy.parameters]\n\
             stack_name = {}\n\
             region = {}\n\
             capabilities = \"CAPABILITY_IAM\"\n\
             resolve_s3 = true\n\
             confirm_changeset = true\n\
             parameter_overrides = {}\n",
            toml_string(&self.stack_name),
            toml_string(&self.region),
            toml_string(&overrides.join(" ")),
        )
    }

    /// Reads what [`SamConfig::render`] writes (and the same keys as `sam deploy --guided`
    /// saves them).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut section = "";
        let mut config = Self::default();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line;
                continue;
            }
            if section != "[default.deploy.parameters]" || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let string = || {
                parse_toml_string(value)
                    .ok_or(format!("samconfig.toml: {} is not a string", key.trim()))
            };
            match key.trim() {
                "stack_name" => config.stack_name = string()?,
                "region" => config.region = string()?,
                "parameter_overrides" => config.parameters = parse_overrides(&string()?)?,
                _ => {}
            }
        }
        if config.stack_name.is_empty() {
            return Err("samconfig.toml has no [default.deploy.parameters] stack_name".into());
        }
        Ok(config)
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn parse_toml_string(value: &str) -> Option<String> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// SAM's `Key=value Key2="quoted \"value\""` list.
fn parse_overrides(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut parameters = BTreeMap::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| {
            format!(
                "parameter_overrides: no '=' in {:?}",
                rest.chars().take(20).collect::<String>()
            )
        })?;
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end =
                end.ok_or_else(|| format!("parameter_overrides: {key}'s quote is not closed"))?;
            (
                quoted[..end].replace("\\\"", "\"").replace("\\ ", " "),
                &quoted[end + 1..],
            )
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        parameters.insert(key.trim().to_owned(), value);
        rest = after.trim_start();
    }
    Ok(parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parameters_survive_the_quoting_sam_undoes() {
        let config = SamConfig {
            stack_name: "proxy".into(),
            region: "eu-west-1".into(),
            parameters: BTreeMap::from([
                (
                    "IdpConnections".to_owned(),
                    r#"{"github": {"allow": ["GET /user"]}}"#.to_owned(),
                ),
                ("Auth0Domain".to_owned(), "example.eu.auth0.com".to_owned()),
            ]),
        };
        let text = config.render();
        assert!(
            text.contains(
                r#"IdpConnections=\"{\\\"github\\\": {\\\"allow\\\": [\\\"GET /user\\\"]}}\""#
            ),
            "{text}"
        );
        assert_eq!(SamConfig::parse(&text), Ok(config));
    }

    #[test]
    fn a_guided_deploy_s_unquoted_values_are_read() {
        let text = "version = 0.1\n[default.deploy.parameters]\nstack_name = \"s\"\nregion = \"us-east-1\"\nparameter_overrides = \"Auth0Domain=\\\"t.auth0.com\\\" TokenTable=\\\"Enabled\\\" AllowedOrigins=\\\"\\\"\"\n";
        let config = SamConfig::parse(text).expect("readable");
        assert_eq!(config.parameters["Auth0Domain"], "t.auth0.com");
        assert_eq!(config.parameters["AllowedOrigins"], "");
    }
}
