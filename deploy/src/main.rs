//! `deploy`: `setup` configures an Auth0 tenant for auth0-idp-proxy, `check` verifies a deployed
//! stack against it (docs/deploy.md). Everything is in the library; this only runs it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = |name: &str| std::env::var(name).ok();
    let code = deploy::run(args, &env).await;
    std::process::ExitCode::from(code)
}
