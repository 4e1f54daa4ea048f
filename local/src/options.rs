//! The command line of `dev/run` (and of the `local` binary behind it).

/// What `--help` prints. `dev/run` prints the same text itself before any build.
pub const USAGE: &str = "\
usage: dev/run [--port N] [--spa-port N | --no-spa] [--once] [--fleet] [--streaming]

Runs the function's real handler on http://127.0.0.1:3000 behind a local HTTP API.
With no AUTH0_DOMAIN set: the demo, against a stand-in Auth0 tenant, a stand-in GitHub and
moto's Secrets Manager, all on 127.0.0.1, with the sample frontend (examples/spa) on
http://127.0.0.1:8080. With the function's variables set (README, Configuration): your tenant.

  --port N          the API's port (default 3000; 0 picks a free one)
  --spa-port N      the sample frontend's port (default 8080; 0 picks a free one)
  --no-spa          do not serve the sample frontend
  --once            run the demo calls, print them and exit (no frontend)
  --fleet           keep fleet state in a DynamoDB token table (moto's, on 127.0.0.1), as a
                    deployment with TOKEN_TABLE does: see README, Fleet state on DynamoDB
  --streaming       answer as a streaming deployment does (RESPONSE_MODE=streaming): IdP
                    bodies stream as they come; the demo adds a stand-in Box whose files
                    download with curl (the ready screen shows how)
  --other-spa-port N  (tests) also serve the frontend on an origin the API does not allow
  --idp-tokens-file FILE  (tests) write every stand-in IdP token issued to FILE, one a
                    line, so that a test can prove that none reaches the browser
  -h, --help        this text

Request logs (one JSON line per invocation) go to stderr; RUST_LOG=warn quiets them.
";

/// The parsed command line.
#[derive(Debug)]
pub struct Options {
    /// The API's port (0: any free one).
    pub port: u16,
    /// The sample frontend's port, if it is served.
    pub spa_port: Option<u16>,
    /// A second frontend origin that the API's CORS does not allow.
    pub other_spa_port: Option<u16>,
    /// Run the demo calls and exit.
    pub once: bool,
    /// Keep fleet state in a token table in moto's DynamoDB.
    pub fleet: bool,
    /// Stream IdP bodies (`RESPONSE_MODE=streaming`).
    pub streaming: bool,
    /// Where to write the stand-in IdP tokens issued, for the browser test.
    pub idp_tokens_file: Option<std::path::PathBuf>,
}

/// What the command line asks for.
pub enum Command {
    /// Run with these options.
    Run(Options),
    /// Print [`USAGE`].
    Help,
}

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        port: 3000,
        spa_port: Some(8080),
        other_spa_port: None,
        once: false,
        fleet: false,
        streaming: false,
        idp_tokens_file: None,
    };
    let mut spa_asked = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        let port = |name: &str, text: String| {
            text.parse::<u16>()
                .map_err(|_| format!("{name} needs a port number from 0 to 65535, not {text:?}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--port" => options.port = port("--port", value("--port")?)?,
            "--spa-port" => {
                options.spa_port = Some(port("--spa-port", value("--spa-port")?)?);
                spa_asked = true;
            }
            "--no-spa" => options.spa_port = None,
            "--fleet" => options.fleet = true,
            "--streaming" => options.streaming = true,
            "--other-spa-port" => {
                options.other_spa_port = Some(port("--other-spa-port", value("--other-spa-port")?)?)
            }
            "--idp-tokens-file" => {
                options.idp_tokens_file = Some(value("--idp-tokens-file")?.into())
            }
            "--once" => options.once = true,
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    // `--once` exits before anyone could open the page, unless a page port was asked for.
    if options.once && !spa_asked {
        options.spa_port = None;
    }
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().map(|s| s.to_string())) {
            Ok(Command::Run(options)) => options,
            Ok(Command::Help) => panic!("help for {args:?}"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn defaults_serve_the_api_and_the_page() {
        let options = run(&[]);
        assert_eq!((options.port, options.spa_port), (3000, Some(8080)));
        assert_eq!(run(&["--once"]).spa_port, None);
        assert_eq!(run(&["--once", "--spa-port", "0"]).spa_port, Some(0));
        assert_eq!(run(&["--no-spa"]).spa_port, None);
        assert!(!run(&[]).streaming && run(&["--streaming"]).streaming);
    }

    #[test]
    fn help_and_mistakes_are_answered() {
        assert!(matches!(parse(["--help".to_owned()]), Ok(Command::Help)));
        let error = parse(["--port".to_owned(), "x".to_owned()]).err();
        assert!(error.is_some_and(|e| e.contains("--port")));
        let error = parse(["--bogus".to_owned()]).err();
        assert!(error.is_some_and(|e| e.contains("--help")));
    }
}
