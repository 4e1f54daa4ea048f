//! The real binary's AWS SDK configuration (`src/aws.rs`): Lambda's environment read directly,
//! session token included on the wire; the default chain (a profile) where the environment lacks
//! credentials and region; and the old way behind its knob, for the benchmark.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use standin::{Outcome, RuntimeApi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;

use crate::binary::{bootstrap, output_of};
use crate::helpers::{PLACEHOLDER, TestApp, event_text, moto, unique};

const USER: &str = "github|1001";

/// A loopback relay to moto that keeps the head of the first request on each connection: what
/// the SDK puts on the wire.
struct Recorder {
    endpoint: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let moto = moto().endpoint().trim_start_matches("http://").to_owned();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&heads);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (moto, kept) = (moto.clone(), Arc::clone(&kept));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match client.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    kept.lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let Ok(mut server) = TcpStream::connect(&moto).await else {
                        return;
                    };
                    if server.write_all(&head).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { endpoint, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }
}

/// Invokes the binary once with the GitHub sample event; the status and the binary's logs.
async fn first_answer(app: &TestApp, runtime: &RuntimeApi, child: Child) -> (u16, String) {
    let event =
        event_text("http-api-idp-github-user.json").replace(PLACEHOLDER, &app.token(USER).sign());
    let outcome = runtime
        .invoke(&event, Duration::from_secs(10), Duration::from_secs(30))
        .await;
    let logs = output_of(child).await;
    match outcome {
        Some(Outcome::Response(response)) => {
            let status = response["statusCode"].as_u64().unwrap_or_default() as u16;
            (status, logs)
        }
        other => panic!("no response: {other:?}; logs: {logs}"),
    }
}

#[tokio::test]
async fn the_binary_signs_with_lambdas_environment_credentials_and_session_token() {
    let app = TestApp::spawn().await;
    let runtime = RuntimeApi::start().await.expect("runtime API");
    let recorder = Recorder::start().await;
    let session = unique("lambda-session-token-");
    let child = bootstrap(&app, &runtime)
        .env("AWS_ACCESS_KEY_ID", "ASIALAMBDAROLE")
        .env("AWS_SESSION_TOKEN", &session)
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &recorder.endpoint)
        .spawn()
        .expect("bootstrap starts");

    let (status, logs) = first_answer(&app, &runtime, child).await;

    assert_eq!(status, 200, "{logs}");
    assert!(
        logs.contains(r#""source":"environment""#),
        "the direct path: {logs}"
    );
    let heads = recorder.heads();
    let read = heads
        .iter()
        .find(|h| h.contains("secretsmanager.GetSecretValue"))
        .unwrap_or_else(|| panic!("no secret read through the recorder: {heads:?}"));
    let lower = read.to_ascii_lowercase();
    assert!(
        lower.contains(&format!(
            "x-amz-security-token: {}",
            session.to_ascii_lowercase()
        )),
        "{read}"
    );
    assert!(
        read.contains("Credential=ASIALAMBDAROLE/") && read.contains("/us-east-1/secretsmanager/"),
        "{read}"
    );
    assert!(
        !logs.contains(&session),
        "the session token reached the logs"
    );
}

#[tokio::test]
async fn without_environment_credentials_the_binary_reads_a_profile() {
    let app = TestApp::spawn().await;
    let runtime = RuntimeApi::start().await.expect("runtime API");
    let home = std::env::temp_dir().join(unique("auth0-idp-proxy-home-"));
    std::fs::create_dir_all(home.join(".aws")).expect("temp HOME");
    std::fs::write(
        home.join(".aws/config"),
        format!(
            "[default]\nregion = us-east-1\nendpoint_url = {}\n",
            moto().endpoint()
        ),
    )
    .expect("config file");
    std::fs::write(
        home.join(".aws/credentials"),
        "[default]\naws_access_key_id = profile\naws_secret_access_key = profile\n",
    )
    .expect("credentials file");
    let child = bootstrap(&app, &runtime)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env_remove("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .env("HOME", &home)
        .spawn()
        .expect("bootstrap starts");

    let (status, logs) = first_answer(&app, &runtime, child).await;
    let _ = std::fs::remove_dir_all(&home);

    // Region, credentials and moto's endpoint are only in the profile: a 200 needs all three.
    assert_eq!(status, 200, "{logs}");
    assert!(
        logs.contains(r#""source":"default chain""#),
        "the default chain: {logs}"
    );
}

#[tokio::test]
async fn the_old_way_stays_selectable_for_the_benchmark() {
    let app = TestApp::spawn().await;
    let runtime = RuntimeApi::start().await.expect("runtime API");
    let child = bootstrap(&app, &runtime)
        .env("SDK_CONFIG", "load-defaults")
        .spawn()
        .expect("bootstrap starts");

    let (status, logs) = first_answer(&app, &runtime, child).await;

    assert_eq!(status, 200, "{logs}");
    assert!(logs.contains(r#""source":"load_defaults""#), "{logs}");
}
