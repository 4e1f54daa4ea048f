//! Checks on `template.yaml` that cfn-lint does not make: a wrong `Runtime`, `Architectures`,
//! `Handler` or event `Method` passes cfn-lint but fails at deploy or invocation time.

use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .expect("template.yaml");
    // Intrinsic-function tags (!Ref, !Sub …) are dropped by the loader; their arguments remain.
    YamlLoader::load_from_str(&text)
        .expect("template.yaml is YAML")
        .remove(0)
}

fn function(template: &Yaml) -> &Yaml {
    &template["Resources"]["ProxyFunction"]
}

#[test]
fn function_runs_the_bootstrap_binary_on_al2023_arm64() {
    let template = template();
    let function = function(&template);
    assert_eq!(function["Type"].as_str(), Some("AWS::Serverless::Function"));
    let properties = &function["Properties"];
    assert_eq!(properties["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(properties["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(
        properties["Architectures"].as_vec().map(Vec::as_slice),
        Some([Yaml::String("arm64".into())].as_slice())
    );
    assert_eq!(properties["CodeUri"].as_str(), Some("."));
    assert_eq!(
        function["Metadata"]["BuildMethod"].as_str(),
        Some("rust-cargolambda")
    );
    assert_eq!(
        function["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("bootstrap")
    );
}

#[test]
fn every_configuration_variable_is_a_parameter() {
    let template = template();
    let variables = &function(&template)["Properties"]["Environment"]["Variables"];
    let parameters = &template["Parameters"];
    for (variable, parameter) in [
        ("AUTH0_DOMAIN", "Auth0Domain"),
        ("AUTH0_AUDIENCE", "Auth0Audience"),
        ("CREDENTIALS_SECRET_ID", "CredentialsSecretArn"),
        ("AUTH0_ISSUER", "Auth0Issuer"),
        ("REQUIRED_SCOPE", "RequiredScope"),
        ("IDP_CONNECTIONS", "IdpConnections"),
        ("ALLOWED_ORIGINS", "AllowedOrigins"),
        ("IDP_TOKEN_CACHE_SIZE", "IdpTokenCacheSize"),
        ("IDP_TOKEN_MAX_AGE", "IdpTokenMaxAge"),
    ] {
        assert_eq!(variables[variable].as_str(), Some(parameter), "{variable}");
        assert!(
            !parameters[parameter].is_badvalue(),
            "{parameter} is declared"
        );
    }
}

#[test]
fn the_only_permission_is_reading_the_one_secret() {
    let template = template();
    let policies = function(&template)["Properties"]["Policies"]
        .as_vec()
        .expect("policies");
    assert_eq!(policies.len(), 1);
    let statements = policies[0]["Statement"].as_vec().expect("statements");
    assert_eq!(statements.len(), 1);
    let statement = &statements[0];
    assert_eq!(statement["Effect"].as_str(), Some("Allow"));
    assert_eq!(
        statement["Action"].as_str(),
        Some("secretsmanager:GetSecretValue")
    );
    assert_eq!(statement["Resource"].as_str(), Some("CredentialsSecretArn"));
}

#[test]
fn http_api_routes_every_method_and_path_to_the_function() {
    let template = template();
    let event = &function(&template)["Properties"]["Events"]["Proxy"];
    assert_eq!(event["Type"].as_str(), Some("HttpApi"));
    assert_eq!(event["Properties"]["Path"].as_str(), Some("/{proxy+}"));
    assert_eq!(event["Properties"]["Method"].as_str(), Some("ANY"));
    assert_eq!(
        template["Resources"]["HttpApi"]["Type"].as_str(),
        Some("AWS::Serverless::HttpApi")
    );
    assert!(!template["Outputs"]["ApiUrl"]["Value"].is_badvalue());
}

/// An HTTP API with CORS configured answers preflights and sets the CORS headers itself: its
/// lists must be the function's own, or a page loses `Link`, `ETag` or the IdP's challenge.
#[test]
fn the_http_apis_cors_lists_are_the_functions() {
    let template = template();
    // `!If [HasAllowedOrigins, {…}, !Ref AWS::NoValue]`: the loader keeps the list.
    let cors = &template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"][1];
    let list = |name: &str| -> Vec<String> {
        cors[name]
            .as_vec()
            .unwrap_or_else(|| panic!("{name}"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect()
    };
    let split = |text: &str| -> Vec<String> { text.split(", ").map(str::to_owned).collect() };
    assert_eq!(
        list("AllowHeaders"),
        split(auth0_idp_proxy::cors::ALLOW_HEADERS)
    );
    assert_eq!(
        list("ExposeHeaders"),
        split(auth0_idp_proxy::cors::EXPOSE_HEADERS)
    );
}
