//! Checks on `template.yaml` that cfn-lint does not make: a wrong `Runtime`, `Architectures`,
//! `Handler` or route passes cfn-lint but fails at deploy or invocation time; alarms and a
//! dashboard on metric names the function does not emit pass too. (.ci/run lints every
//! combination of the parameters that change resources.)

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use auth0_idp_proxy::routes::RouteName;
use auth0_idp_proxy::service::Service;
use auth0_idp_proxy::telemetry::{self, Cache, Invocation};
use serde_json::{Value, json};
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
        ("IDP_TOKEN_SOURCE", "IdpTokenSource"),
        ("IDP_TOKEN_CACHE_SIZE", "IdpTokenCacheSize"),
        ("IDP_TOKEN_MAX_AGE", "IdpTokenMaxAge"),
        ("RESPONSE_MODE", "ResponseMode"),
    ] {
        assert_eq!(variables[variable].as_str(), Some(parameter), "{variable}");
        assert!(
            !parameters[parameter].is_badvalue(),
            "{parameter} is declared"
        );
    }
}

/// The statements of the function's one policy, with `conditions` on.
fn statements(conditions: &[&str]) -> Vec<Yaml> {
    let resources = resources_with(&template(), conditions);
    let policies = resources["ProxyFunction"]["Properties"]["Policies"]
        .as_vec()
        .expect("policies")
        .clone();
    assert_eq!(policies.len(), 1);
    policies[0]["Statement"]
        .as_vec()
        .expect("statements")
        .clone()
}

#[test]
fn the_permissions_are_the_two_secrets_and_with_the_table_its_four_item_actions_and_keys() {
    let secrets_only = statements(&[]);
    assert_eq!(secrets_only.len(), 2);
    for (statement, secret) in secrets_only
        .iter()
        .zip(["CredentialsSecretArn", "KillSwitchSecret"])
    {
        assert_eq!(statement["Effect"].as_str(), Some("Allow"));
        assert_eq!(
            statement["Action"].as_str(),
            Some("secretsmanager:GetSecretValue")
        );
        assert_eq!(statement["Resource"].as_str(), Some(secret));
    }

    let with_table = statements(&["UseTokenTable"]);
    assert_eq!(with_table.len(), 4);
    // The keys secret: read, nothing more, that one secret only.
    let keys = &with_table[3];
    assert_eq!(keys["Effect"].as_str(), Some("Allow"));
    assert_eq!(
        keys["Action"].as_str(),
        Some("secretsmanager:GetSecretValue")
    );
    assert_eq!(keys["Resource"].as_str(), Some("TokenTableKeysSecret"));
    let table = &with_table[2];
    assert_eq!(table["Effect"].as_str(), Some("Allow"));
    let actions: Vec<&str> = table["Action"]
        .as_vec()
        .expect("actions")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(
        actions,
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem"
        ]
    );
    // `!GetAtt TokenTableResource.Arn`: the one table, no wildcard.
    assert_eq!(table["Resource"].as_str(), Some("TokenTableResource.Arn"));
}

#[test]
fn with_the_table_the_stack_generates_its_keys_and_tells_the_function_where() {
    let template = template();
    let resources = resources_with(&template, &["UseTokenTable"]);
    let secret = &resources["TokenTableKeysSecret"];
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    let properties = &secret["Properties"];
    assert!(
        properties["SecretString"].is_badvalue(),
        "generated, never written in the template"
    );
    // Named after the stack, so that `deploy check` finds it from samconfig.toml's stack name.
    assert_eq!(
        properties["Name"].as_str(),
        Some("${AWS::StackName}-token-table-keys")
    );
    let generate = &properties["GenerateSecretString"];
    assert_eq!(generate["GenerateStringKey"].as_str(), Some("key"));
    assert_eq!(generate["ExcludePunctuation"].as_bool(), Some(true));
    let length = generate["PasswordLength"].as_i64().expect("a length");
    // Letters and digits only: log2(62) bits a character, at least 256 bits in all.
    assert!(
        length as f64 * 62f64.log2() >= 256.0
            && usize::try_from(length)
                .is_ok_and(|n| n >= auth0_idp_proxy::fleet::seal::MIN_KEY_CHARS),
        "{length} characters"
    );
    // What Secrets Manager will store: the template with the generated key in it, which the
    // function's own rule accepts.
    let mut value: Value = serde_json::from_str(
        generate["SecretStringTemplate"]
            .as_str()
            .expect("a template"),
    )
    .expect("JSON");
    value["key"] = Value::String("aZ9".repeat(usize::try_from(length).expect("length") / 3 + 1));
    assert!(auth0_idp_proxy::fleet::seal::keys_from_secret(&value.to_string()).is_ok());

    let variables = &resources["ProxyFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["TOKEN_STORE_KEYS_SECRET_ID"].as_str(),
        Some("TokenTableKeysSecret")
    );
    assert_eq!(
        template["Outputs"]["TokenTableKeysSecretArn"]["Condition"].as_str(),
        Some("UseTokenTable")
    );

    let without = resources_with(&template, &[]);
    assert!(!without.contains_key("TokenTableKeysSecret"));
    let variables = &without["ProxyFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["TOKEN_STORE_KEYS_SECRET_ID"].as_str(), Some(""));
    // No parameter asks for keys: nobody writes them by hand.
    let parameters = template["Parameters"].as_hash().expect("parameters");
    for (name, parameter) in parameters {
        let text = parameter["Description"].as_str().unwrap_or_default();
        assert!(
            !text.contains("token_store_keys"),
            "{name:?} asks for token_store_keys"
        );
    }
}

#[test]
fn the_kill_switch_is_created_empty_and_the_function_is_told_its_arn() {
    let template = template();
    let secret = &template["Resources"]["KillSwitchSecret"];
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    let value: serde_json::Value = serde_json::from_str(
        secret["Properties"]["SecretString"]
            .as_str()
            .expect("a value"),
    )
    .expect("JSON");
    assert_eq!(value, serde_json::json!({"users": [], "connections": []}));
    let variables = &function(&template)["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["KILL_SWITCH_SECRET_ID"].as_str(),
        Some("KillSwitchSecret")
    );
}

#[test]
fn the_token_table_is_on_demand_with_ttl_and_the_function_is_told_its_name() {
    let template = template();
    assert_eq!(
        template["Parameters"]["TokenTable"]["Default"].as_str(),
        Some("Enabled")
    );
    let resources = resources_with(&template, &["UseTokenTable"]);
    let table = &resources["TokenTableResource"]["Properties"];
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    let key = &table["KeySchema"][0];
    assert_eq!(
        (key["AttributeName"].as_str(), key["KeyType"].as_str()),
        (Some("pk"), Some("HASH"))
    );
    assert_eq!(
        table["KeySchema"].as_vec().map(Vec::len),
        Some(1),
        "no sort key"
    );
    assert_eq!(
        table["AttributeDefinitions"][0]["AttributeType"].as_str(),
        Some("S")
    );
    let ttl = &table["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"].as_str(), Some("expires_at"));
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));
    let variables = &resources["ProxyFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["TOKEN_TABLE"].as_str(),
        Some("TokenTableResource")
    );

    let without = resources_with(&template, &[]);
    assert!(!without.contains_key("TokenTableResource"));
    let variables = &without["ProxyFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["TOKEN_TABLE"].as_str(),
        Some(""),
        "unset: memory only"
    );
}

/// `value` with each `!If [condition, then, else]` resolved by `conditions`, and `AWS::NoValue`
/// dropped. The loader drops the tags, so an `!If` is recognised as a three-element list whose
/// first element names a template condition (no other list in the template starts so).
fn resolve(value: &Yaml, conditions: &HashMap<&str, bool>) -> Option<Yaml> {
    match value {
        Yaml::Array(items) => {
            if let [Yaml::String(name), then, otherwise] = items.as_slice()
                && let Some(&holds) = conditions.get(name.as_str())
            {
                return resolve(if holds { then } else { otherwise }, conditions);
            }
            Some(Yaml::Array(
                items
                    .iter()
                    .filter_map(|v| resolve(v, conditions))
                    .collect(),
            ))
        }
        Yaml::Hash(map) => Some(Yaml::Hash(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), resolve(v, conditions)?)))
                .collect(),
        )),
        Yaml::String(s) if s == "AWS::NoValue" => None,
        other => Some(other.clone()),
    }
}

/// Each template condition as `on` says (others off), but `Buffered`, which is `!Not Streaming`
/// unless named.
fn conditions_with<'a>(template: &'a Yaml, on: &[&str]) -> HashMap<&'a str, bool> {
    let mut conditions: HashMap<&str, bool> = template["Conditions"]
        .as_hash()
        .expect("conditions")
        .keys()
        .map(|k| {
            let name = k.as_str().expect("name");
            (name, on.contains(&name))
        })
        .collect();
    if !on.contains(&"Buffered") {
        conditions.insert("Buffered", !on.contains(&"Streaming"));
    }
    conditions
}

/// The resources deployed when each template condition is as `on` says (see [`conditions_with`]).
fn resources_with(template: &Yaml, on: &[&str]) -> HashMap<String, Yaml> {
    let conditions = conditions_with(template, on);
    template["Resources"]
        .as_hash()
        .expect("resources")
        .iter()
        .filter(|(_, r)| {
            r["Condition"]
                .as_str()
                .is_none_or(|c| conditions.get(c).copied().unwrap_or(false))
        })
        .map(|(k, r)| {
            let name = k.as_str().expect("name").to_owned();
            (name, resolve(r, &conditions).expect("a resource"))
        })
        .collect()
}

/// `value` with each `!If` resolved as `on` says (see [`conditions_with`]).
fn resolved(template: &Yaml, on: &[&str], value: &Yaml) -> Yaml {
    resolve(value, &conditions_with(template, on)).expect("a value")
}

/// The function's `Timeout`, in seconds, with `on`.
fn timeout_seconds(template: &Yaml, on: &[&str]) -> i64 {
    resolved(template, on, &template["Globals"]["Function"]["Timeout"])
        .as_i64()
        .expect("a timeout in seconds")
}

/// The dashboard's body with `on`, `!Sub`'s placeholders and variables filled in as
/// CloudFormation would, parsed.
fn dashboard_body(template: &Yaml, on: &[&str]) -> Value {
    // `!Sub [text, {variable: value}]`: the loader keeps the list.
    let sub = resolved(
        template,
        on,
        &template["Resources"]["Dashboard"]["Properties"]["DashboardBody"],
    );
    let mut text = sub[0].as_str().expect("DashboardBody's text").to_owned();
    for (name, value) in sub[1].as_hash().expect("DashboardBody's variables") {
        let value = match value {
            Yaml::Integer(n) => n.to_string(),
            other => other.as_str().expect("a text").to_owned(),
        };
        text = text.replace(&format!("${{{}}}", name.as_str().expect("a name")), &value);
    }
    let text = text
        .replace("${AWS::StackName}", "stack")
        .replace("${AWS::Region}", "us-east-1")
        .replace("${ProxyFunction}", "fn")
        .replace("${HttpApi}", "api")
        .replace("${RestApiStage}", "prod");
    assert!(!text.contains("${"), "every placeholder is known: {text}");
    serde_json::from_str(&text).expect("the body is JSON")
}

fn resources_of_type<'a>(
    resources: &'a HashMap<String, Yaml>,
    kind: &str,
) -> Vec<(&'a str, &'a Yaml)> {
    let mut found: Vec<_> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str(), r))
        .collect();
    found.sort_by_key(|(name, _)| *name);
    found
}

#[test]
fn http_api_routes_every_method_and_path_to_the_function() {
    let template = template();
    let resources = resources_with(&template, &[]);
    let api = &resources["HttpApi"];
    assert_eq!(api["Type"].as_str(), Some("AWS::ApiGatewayV2::Api"));
    assert_eq!(api["Properties"]["ProtocolType"].as_str(), Some("HTTP"));
    assert!(
        resources_of_type(&resources, "AWS::Serverless::HttpApi").is_empty(),
        "SAM's API would delete these routes when it re-imports its body"
    );
    let stage = &resources["HttpApiStage"]["Properties"];
    assert_eq!(stage["StageName"].as_str(), Some("$default"));
    assert_eq!(stage["AutoDeploy"].as_bool(), Some(true));
    let routes = resources_of_type(&resources, "AWS::ApiGatewayV2::Route");
    let keys: Vec<&str> = routes
        .iter()
        .map(|(_, r)| r["Properties"]["RouteKey"].as_str().expect("route key"))
        .collect();
    assert_eq!(keys, ["OPTIONS /{proxy+}", "ANY /{proxy+}"]);
    for (_, route) in &routes {
        assert_eq!(route["Properties"]["ApiId"].as_str(), Some("HttpApi"));
        assert_eq!(
            route["Properties"]["Target"].as_str(),
            Some("integrations/${ProxyIntegration}")
        );
    }
    let integration = &resources["ProxyIntegration"]["Properties"];
    assert_eq!(integration["IntegrationType"].as_str(), Some("AWS_PROXY"));
    assert_eq!(integration["PayloadFormatVersion"].as_str(), Some("2.0"));
    assert_eq!(
        integration["IntegrationUri"].as_str(),
        Some("ProxyFunction.Arn")
    );
    let permission = &resources["ApiInvokesProxy"]["Properties"];
    assert_eq!(permission["FunctionName"].as_str(), Some("ProxyFunction"));
    assert_eq!(
        permission["Principal"].as_str(),
        Some("apigateway.amazonaws.com")
    );
    assert!(
        permission["SourceArn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(":${HttpApi}/*")),
        "only this API may invoke the function"
    );
    assert!(!template["Outputs"]["ApiUrl"]["Value"].is_badvalue());
}

#[test]
fn the_default_route_is_throttled_with_safe_defaults() {
    let template = template();
    let settings = &template["Resources"]["HttpApiStage"]["Properties"]["DefaultRouteSettings"];
    for (property, parameter, default) in [
        ("ThrottlingRateLimit", "ThrottlingRateLimit", 25),
        ("ThrottlingBurstLimit", "ThrottlingBurstLimit", 50),
    ] {
        assert_eq!(settings[property].as_str(), Some(parameter));
        let parameter = &template["Parameters"][parameter];
        assert_eq!(parameter["Type"].as_str(), Some("Number"));
        assert_eq!(parameter["Default"].as_i64(), Some(default));
        assert_eq!(
            parameter["MinValue"].as_i64(),
            Some(1),
            "0 would refuse every request"
        );
    }
}

#[test]
fn without_the_authorizer_every_route_reaches_the_function_unauthenticated() {
    let template = template();
    assert_eq!(
        template["Parameters"]["JwtAuthorizer"]["Default"].as_str(),
        Some("Disabled")
    );
    let resources = resources_with(&template, &["RequireScopeAtTheEdge"]);
    assert!(resources_of_type(&resources, "AWS::ApiGatewayV2::Authorizer").is_empty());
    for (name, route) in resources_of_type(&resources, "AWS::ApiGatewayV2::Route") {
        let properties = &route["Properties"];
        assert_eq!(
            properties["AuthorizationType"].as_str(),
            Some("NONE"),
            "{name}"
        );
        assert!(properties["AuthorizerId"].is_badvalue(), "{name}");
    }
}

#[test]
fn with_the_authorizer_api_gateway_checks_the_token_but_not_the_preflight() {
    let template = template();
    for (on, scopes) in [
        (vec!["UseJwtAuthorizer"], None),
        (
            vec!["UseJwtAuthorizer", "RequireScopeAtTheEdge"],
            Some("RequiredScope"),
        ),
    ] {
        let resources = resources_with(&template, &on);
        let authorizers = resources_of_type(&resources, "AWS::ApiGatewayV2::Authorizer");
        let [(authorizer_name, authorizer)] = authorizers.as_slice() else {
            panic!("one authorizer: {authorizers:?}")
        };
        let properties = &authorizer["Properties"];
        assert_eq!(properties["AuthorizerType"].as_str(), Some("JWT"));
        assert_eq!(properties["ApiId"].as_str(), Some("HttpApi"));
        assert_eq!(
            properties["IdentitySource"][0].as_str(),
            Some("$request.header.Authorization")
        );
        let jwt = &properties["JwtConfiguration"];
        assert_eq!(jwt["Audience"][0].as_str(), Some("Auth0Audience"));
        // The same issuer the function expects: the tenant's origin and "/" (`Host` is
        // Auth0Domain with any "https://" cut out, as !Join ["", !Split ...] does) ...
        let issuer = &jwt["Issuer"];
        assert_eq!(issuer[0].as_str(), Some("https://${Host}/"));
        assert_eq!(
            issuer[1]["Host"],
            Yaml::Array(vec![
                Yaml::String(String::new()),
                Yaml::Array(vec![
                    Yaml::String("https://".into()),
                    Yaml::String("Auth0Domain".into())
                ])
            ])
        );
        // ... or AUTH0_ISSUER when set.
        let mut custom = on.clone();
        custom.push("HasAuth0Issuer");
        let resources_custom = resources_with(&template, &custom);
        assert_eq!(
            resources_custom["Auth0Authorizer"]["Properties"]["JwtConfiguration"]["Issuer"]
                .as_str(),
            Some("Auth0Issuer")
        );

        let route = &resources["ProxyRoute"]["Properties"];
        assert_eq!(route["AuthorizationType"].as_str(), Some("JWT"));
        assert_eq!(route["AuthorizerId"].as_str(), Some(*authorizer_name));
        assert_eq!(route["AuthorizationScopes"][0].as_str(), scopes);
        let preflight = &resources["PreflightRoute"]["Properties"];
        assert_eq!(preflight["RouteKey"].as_str(), Some("OPTIONS /{proxy+}"));
        assert_eq!(preflight["AuthorizationType"].as_str(), Some("NONE"));
        assert!(preflight["AuthorizerId"].is_badvalue());
    }
}

#[test]
fn reserved_concurrency_is_optional() {
    let template = template();
    assert_eq!(
        template["Parameters"]["ReservedConcurrency"]["Default"].as_str(),
        Some("")
    );
    let property = |on: &[&str]| {
        resources_with(&template, on)["ProxyFunction"]["Properties"]["ReservedConcurrentExecutions"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(property(&[]), None);
    assert_eq!(
        property(&["HasReservedConcurrency"]).as_deref(),
        Some("ReservedConcurrency")
    );
}

#[test]
fn the_template_creates_the_log_group_with_a_retention_of_30_days_by_default() {
    let template = template();
    let parameter = &template["Parameters"]["LogRetentionDays"];
    assert_eq!(parameter["Default"].as_i64(), Some(30));
    assert!(
        parameter["AllowedValues"]
            .as_vec()
            .expect("CloudWatch's retention values")
            .contains(&Yaml::Integer(30))
    );
    let group = &template["Resources"]["ProxyLogGroup"];
    assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"));
    assert_eq!(
        group["Properties"]["RetentionInDays"].as_str(),
        Some("LogRetentionDays")
    );
    let logging = &function(&template)["Properties"]["LoggingConfig"];
    assert_eq!(logging["LogGroup"].as_str(), Some("ProxyLogGroup"));
    assert_eq!(logging["LogFormat"].as_str(), Some("JSON"));
    // The metrics ride on the INFO summary line.
    assert_eq!(logging["ApplicationLogLevel"].as_str(), Some("INFO"));
}

/// The function's metrics namespace, as the template sets it.
fn namespace(template: &Yaml) -> &str {
    function(template)["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"]
        .as_str()
        .expect("METRICS_NAMESPACE")
}

/// A summary line with every metric the function can emit, and so every dimension.
async fn a_full_summary_line() -> Value {
    let ((), trace) = telemetry::traced(async {
        for service in Service::ALL {
            telemetry::upstream_time(service, Duration::from_millis(1));
        }
        telemetry::cache_lookup(Cache::IdpToken, true);
        telemetry::renewal(true);
        telemetry::renewal(false);
        telemetry::rate_limited(Service::ManagementApi);
        telemetry::token_table_degraded();
        telemetry::token_table_keys_unusable();
        telemetry::error_code("reconsent_required");
    })
    .await;
    let invocation = Invocation {
        request_id: "r",
        route: RouteName::Idp,
        connection: Some("github"),
        status: 503,
        duration: Duration::from_millis(3),
    };
    serde_json::from_str(&trace.summary(&invocation, SystemTime::now(), "ns"))
        .expect("the summary line is JSON")
}

/// The metric and dimension names a summary line declares.
fn emitted_names(line: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = BTreeSet::new();
    let mut dimensions = BTreeSet::new();
    for directive in line["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("directives")
    {
        for metric in directive["Metrics"].as_array().expect("metrics") {
            metrics.insert(metric["Name"].as_str().expect("name").to_owned());
        }
        for set in directive["Dimensions"].as_array().expect("sets") {
            for name in set.as_array().expect("set") {
                dimensions.insert(name.as_str().expect("name").to_owned());
            }
        }
    }
    (metrics, dimensions)
}

#[tokio::test]
async fn alarms_watch_what_the_runbook_names_on_metrics_that_exist() {
    let template = template();
    let (emitted, _) = emitted_names(&a_full_summary_line().await);
    let namespace = namespace(&template);
    assert_eq!(namespace, "auth0-idp-proxy/${AWS::StackName}");
    let timeout_ms = timeout_seconds(&template, &[]) * 1000;
    let resources = resources_with(&template, &["UseTokenTable", "HasAlarmTopic"]);
    let alarms = resources_of_type(&resources, "AWS::CloudWatch::Alarm");
    let names: Vec<&str> = alarms.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "Auth0RateLimitAlarm",
            "DurationP99Alarm",
            "FunctionErrorsAlarm",
            "ReconsentBurstAlarm",
            "ServerErrorRateAlarm",
            "TokenTableDegradedAlarm",
            "TokenTableKeysAlarm",
        ]
    );
    let watched = |name: &str| {
        let properties = &resources[name]["Properties"];
        (
            properties["Namespace"].as_str().map(str::to_owned),
            properties["MetricName"].as_str().map(str::to_owned),
        )
    };
    for (alarm, metric) in [
        ("ReconsentBurstAlarm", "Reconsents"),
        ("Auth0RateLimitAlarm", "Auth0RateLimited"),
        ("TokenTableDegradedAlarm", "TokenTableDegraded"),
        ("TokenTableKeysAlarm", "TokenTableKeysUnusable"),
    ] {
        assert_eq!(
            watched(alarm),
            (Some(namespace.to_owned()), Some(metric.to_owned()))
        );
        assert!(emitted.contains(metric), "the function emits {metric}");
        // The fleet-wide metric: the summary line's empty dimension set.
        assert!(resources[alarm]["Properties"]["Dimensions"].is_badvalue());
    }
    assert_eq!(
        watched("FunctionErrorsAlarm"),
        (Some("AWS/Lambda".into()), Some("Errors".into()))
    );
    let p99 = &resources["DurationP99Alarm"]["Properties"];
    assert_eq!(
        (
            p99["MetricName"].as_str(),
            p99["ExtendedStatistic"].as_str()
        ),
        (Some("Duration"), Some("p99"))
    );
    assert_eq!(
        p99["Threshold"].as_i64(),
        Some(timeout_ms * 8 / 10),
        "80 % of the timeout"
    );
    let rate = &resources["ServerErrorRateAlarm"]["Properties"];
    let metrics = rate["Metrics"].as_vec().expect("metric math");
    let stat = |id: &str| {
        let m = metrics
            .iter()
            .find(|m| m["Id"].as_str() == Some(id))
            .expect(id);
        m["MetricStat"]["Metric"]["MetricName"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(stat("errors").as_deref(), Some("5xx"));
    assert_eq!(stat("requests").as_deref(), Some("Count"));
    assert_eq!(
        resources["ReconsentBurstAlarm"]["Properties"]["Threshold"].as_str(),
        Some("ReconsentAlarmThreshold")
    );
    for (name, alarm) in &alarms {
        let properties = &alarm["Properties"];
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(
                properties[actions][0].as_str(),
                Some("AlarmTopicArn"),
                "{name} {actions}"
            );
        }
        assert_eq!(
            properties["TreatMissingData"].as_str(),
            Some("notBreaching"),
            "{name}: no traffic is no trouble"
        );
    }
    // Without the topic the alarms have no actions; without the table, no table alarm.
    let plain = resources_with(&template, &[]);
    assert!(!plain.contains_key("TokenTableDegradedAlarm"));
    assert!(!plain.contains_key("TokenTableKeysAlarm"));
    // One bad environment is enough to alarm on: every invocation it serves counts 1.
    let keys = &resources["TokenTableKeysAlarm"]["Properties"];
    assert_eq!(
        (
            keys["Statistic"].as_str(),
            keys["Threshold"].as_i64(),
            keys["ComparisonOperator"].as_str()
        ),
        (Some("Sum"), Some(1), Some("GreaterThanOrEqualToThreshold"))
    );
    for (name, alarm) in resources_of_type(&plain, "AWS::CloudWatch::Alarm") {
        assert!(alarm["Properties"]["AlarmActions"].is_badvalue(), "{name}");
    }
}

#[tokio::test]
async fn the_dashboard_shows_every_metric_per_connection() {
    let template = template();
    let dashboard = &template["Resources"]["Dashboard"];
    assert_eq!(
        dashboard["Type"].as_str(),
        Some("AWS::CloudWatch::Dashboard")
    );
    // Buffered mode's body (the streaming one: `the_streaming_dashboard_draws_the_rest_api`).
    let body = dashboard_body(&template, &[]);
    let (emitted, dimensions) = emitted_names(&a_full_summary_line().await);
    let namespace = namespace(&template).replace("${AWS::StackName}", "stack");

    // Every metric of the function's namespace that a widget draws: (name, dimensions).
    let mut drawn: Vec<(String, Vec<String>)> = Vec::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        let mut previous: Option<String> = None;
        for row in widget["properties"]["metrics"].as_array().expect("metrics") {
            if let Some(expression) = row[0]["expression"].as_str() {
                let schema = expression
                    .split_once('{')
                    .and_then(|(_, rest)| rest.split_once('}'))
                    .expect("a SEARCH schema")
                    .0;
                let mut keys = schema.split(',');
                assert_eq!(keys.next(), Some(format!("\"{namespace}\"").as_str()));
                let metric = expression
                    .split_once("MetricName=\"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .expect("a metric name")
                    .0;
                drawn.push((metric.to_owned(), keys.map(str::to_owned).collect()));
            } else if let Some(first) = row[0].as_str() {
                let space = if first == "." {
                    previous.clone()
                } else {
                    Some(first.to_owned())
                };
                previous = space.clone();
                if space.as_deref() == Some(namespace.as_str()) {
                    drawn.push((row[1].as_str().expect("name").to_owned(), Vec::new()));
                }
            }
        }
    }
    for (metric, keys) in &drawn {
        assert!(emitted.contains(metric), "the function emits {metric}");
        for key in keys {
            assert!(
                dimensions.contains(key),
                "the function emits dimension {key}"
            );
        }
    }
    for metric in [
        "Duration",
        "IdpTime",
        "IdpTokenCacheHits",
        "IdpTokenCacheMisses",
        "Renewals",
        "RenewalFailures",
        "Reconsents",
        "Errors",
        "ServerErrors",
    ] {
        assert!(
            drawn
                .iter()
                .any(|(m, keys)| m == metric && keys.iter().any(|k| k == "Connection")),
            "{metric} per connection"
        );
    }
    for metric in [
        "TokenEndpointTime",
        "ManagementApiTime",
        "JwksTime",
        "SecretsManagerTime",
        "Auth0RateLimited",
        "TokenTableDegraded",
        "TokenTableKeysUnusable",
    ] {
        assert!(drawn.iter().any(|(m, _)| m == metric), "{metric} drawn");
    }
}

#[test]
fn the_template_is_publishable_to_the_serverless_application_repository() {
    let template = template();
    let application = &template["Metadata"]["AWS::ServerlessRepo::Application"];
    for field in ["Name", "Description", "Author"] {
        assert!(
            application[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}"
        );
    }
    assert_eq!(application["Name"].as_str(), Some(env!("CARGO_PKG_NAME")));
    assert_eq!(
        application["SemanticVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        application["SpdxLicenseId"].as_str(),
        Some(env!("CARGO_PKG_LICENSE"))
    );
    for (field, file) in [("LicenseUrl", "LICENSE"), ("ReadmeUrl", "README.md")] {
        assert_eq!(application[field].as_str(), Some(file));
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        assert!(std::path::Path::new(&path).is_file(), "{file} exists");
    }
    let license =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/LICENSE")).expect("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    for field in ["SourceCodeUrl", "HomePageUrl"] {
        assert!(
            application[field]
                .as_str()
                .is_some_and(|url| url.starts_with("https://")),
            "{field}"
        );
    }
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

#[test]
fn the_http_api_stage_writes_json_access_logs_kept_as_long_as_the_functions() {
    let template = template();
    let settings = &template["Resources"]["HttpApiStage"]["Properties"]["AccessLogSettings"];
    // `!GetAtt ApiAccessLogGroup.Arn`: the loader keeps the argument.
    assert_eq!(
        settings["DestinationArn"].as_str(),
        Some("ApiAccessLogGroup.Arn")
    );
    let format = settings["Format"].as_str().expect("an access log format");
    let line: Value = serde_json::from_str(format).expect("the access log format is JSON");
    for (field, variable) in [
        ("requestId", "$context.requestId"),
        ("status", "$context.status"),
        ("path", "$context.path"),
        ("integrationError", "$context.integrationErrorMessage"),
    ] {
        assert_eq!(line[field].as_str(), Some(variable), "{field}");
    }
    // No header is logged: an Authorization value would be a token in the log.
    assert!(!format.contains("header"), "{format}");
    let group = &template["Resources"]["ApiAccessLogGroup"];
    assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"));
    assert_eq!(
        group["Properties"]["RetentionInDays"].as_str(),
        Some("LogRetentionDays")
    );
}

#[test]
fn every_skipped_scanner_check_says_why_in_one_line() {
    let template = template();
    let resources = template["Resources"].as_hash().expect("resources");
    let mut skipped = 0;
    for (name, resource) in resources {
        let Some(skips) = resource["Metadata"]["checkov"]["skip"].as_vec() else {
            continue;
        };
        for skip in skips {
            let id = skip["id"].as_str().unwrap_or_default();
            let comment = skip["comment"].as_str().unwrap_or_default();
            assert!(id.starts_with("CKV_AWS_"), "{name:?}: {id:?}");
            assert!(
                comment.len() > 20 && !comment.contains('\n'),
                "{name:?} skips {id} without a one-line reason"
            );
            skipped += 1;
        }
    }
    assert!(
        skipped > 0,
        "no Metadata skip found: the test reads the wrong place"
    );
}

// ResponseMode: buffered (the HTTP API, the default) or streaming (a REST API that streams the
// function's answers). Everything above checks buffered mode; what follows checks that streaming
// mode keeps what the HTTP API gives (throttling, the access log, a scoped permission, alarms)
// and that buffered mode is as it was.

/// The resource types of API Gateway's REST APIs (v1) and of its HTTP APIs (v2).
const REST_API_TYPES: &str = "AWS::ApiGateway::";
const HTTP_API_TYPES: &str = "AWS::ApiGatewayV2::";

fn types_of(resources: &HashMap<String, Yaml>) -> BTreeSet<String> {
    resources
        .values()
        .filter_map(|r| r["Type"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn response_mode_is_a_parameter_passed_as_response_mode_buffered_by_default() {
    let template = template();
    let parameter = &template["Parameters"]["ResponseMode"];
    assert_eq!(parameter["Type"].as_str(), Some("String"));
    assert_eq!(parameter["Default"].as_str(), Some("buffered"));
    let allowed: Vec<&str> = parameter["AllowedValues"]
        .as_vec()
        .expect("allowed values")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(allowed, ["buffered", "streaming"]);
    // It says when to choose which.
    let description = parameter["Description"].as_str().expect("a description");
    for words in ["6 MB", "200 MB", "REST API", "JwtAuthorizer", "timeout"] {
        assert!(description.contains(words), "{words}: {description}");
    }
    for on in [&[][..], &["Streaming"]] {
        let resources = resources_with(&template, on);
        let variables = &resources["ProxyFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            variables["RESPONSE_MODE"].as_str(),
            Some("ResponseMode"),
            "{on:?}"
        );
    }
    // The two modes are one condition and its negation.
    let conditions = &template["Conditions"];
    assert_eq!(
        conditions["Streaming"],
        Yaml::Array(vec![
            Yaml::String("ResponseMode".into()),
            Yaml::String("streaming".into())
        ])
    );
    assert_eq!(
        conditions["Buffered"],
        Yaml::Array(vec![Yaml::String("Streaming".into())])
    );
}

#[test]
fn buffered_mode_deploys_the_http_api_as_before_and_no_rest_api() {
    let template = template();
    let resources = resources_with(&template, &[]);
    let types = types_of(&resources);
    assert!(
        types.iter().any(|t| t.starts_with(HTTP_API_TYPES)),
        "{types:?}"
    );
    assert!(
        !types.iter().any(|t| t.starts_with(REST_API_TYPES)),
        "{types:?}"
    );
    // Every HTTP API resource, and only those, belongs to buffered mode.
    for (name, resource) in template["Resources"].as_hash().expect("resources") {
        let name = name.as_str().expect("a name");
        let kind = resource["Type"].as_str().expect("a type");
        let api_permission = resource["Properties"]["SourceArn"]
            .as_str()
            .is_some_and(|arn| arn.contains("${HttpApi}"));
        if kind.starts_with(HTTP_API_TYPES) || api_permission {
            assert!(
                matches!(
                    resource["Condition"].as_str(),
                    Some("Buffered" | "UseJwtAuthorizer")
                ),
                "{name} is buffered mode's"
            );
        }
        if kind.starts_with(REST_API_TYPES) {
            assert_eq!(
                resource["Condition"].as_str(),
                Some("Streaming"),
                "{name} is streaming mode's"
            );
        }
    }
    // The function, its alarm on duration and the URL as they were.
    assert_eq!(timeout_seconds(&template, &[]), 10);
    assert_eq!(
        resources["DurationP99Alarm"]["Properties"]["Threshold"].as_i64(),
        Some(8000)
    );
    let permissions = resources_of_type(&resources, "AWS::Lambda::Permission");
    let names: Vec<&str> = permissions.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["ApiInvokesProxy"]);
    assert_eq!(
        resolved(&template, &[], &template["Outputs"]["ApiUrl"]["Value"]).as_str(),
        Some("https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/")
    );
    let rate = &resources["ServerErrorRateAlarm"]["Properties"]["Metrics"];
    assert_eq!(
        rate[0]["MetricStat"]["Metric"]["MetricName"].as_str(),
        Some("5xx")
    );
    assert_eq!(
        rate[0]["MetricStat"]["Metric"]["Dimensions"][0]["Name"].as_str(),
        Some("ApiId")
    );
}

/// The REST API's methods among `resources`: (resource, HTTP method, properties), sorted.
fn rest_methods(resources: &HashMap<String, Yaml>) -> Vec<(String, String, Yaml)> {
    let mut methods: Vec<_> = resources_of_type(resources, "AWS::ApiGateway::Method")
        .into_iter()
        .map(|(_, method)| {
            let properties = method["Properties"].clone();
            (
                properties["ResourceId"]
                    .as_str()
                    .expect("a resource")
                    .to_owned(),
                properties["HttpMethod"]
                    .as_str()
                    .expect("a method")
                    .to_owned(),
                properties,
            )
        })
        .collect();
    methods.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    methods
}

#[test]
fn streaming_mode_streams_every_path_and_method_through_a_regional_rest_api() {
    let template = template();
    let resources = resources_with(&template, &["Streaming"]);
    let types = types_of(&resources);
    assert!(
        !types.iter().any(|t| t.starts_with(HTTP_API_TYPES)),
        "no HTTP API: {types:?}"
    );
    let api = &resources["RestApi"];
    assert_eq!(api["Type"].as_str(), Some("AWS::ApiGateway::RestApi"));
    assert_eq!(
        api["Properties"]["EndpointConfiguration"]["Types"][0].as_str(),
        Some("REGIONAL")
    );
    // Request bodies arrive base64-encoded, byte for byte, whatever their type.
    assert_eq!(
        api["Properties"]["BinaryMediaTypes"][0].as_str(),
        Some("*/*")
    );
    let proxy = &resources["RestApiProxyResource"]["Properties"];
    assert_eq!(proxy["PathPart"].as_str(), Some("{proxy+}"));
    assert_eq!(proxy["ParentId"].as_str(), Some("RestApi.RootResourceId"));

    // ANY on the root and on {proxy+}: every path and method, OPTIONS included (the function
    // answers CORS preflights itself), reaches the function with no authorizer in front.
    let methods = rest_methods(&resources);
    let keys: Vec<(&str, &str)> = methods
        .iter()
        .map(|(resource, method, _)| (resource.as_str(), method.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("RestApi.RootResourceId", "ANY"),
            ("RestApiProxyResource", "ANY")
        ]
    );
    let timeout_ms = timeout_seconds(&template, &["Streaming"]) * 1000;
    for (resource, _, method) in &methods {
        assert_eq!(method["RestApiId"].as_str(), Some("RestApi"));
        assert_eq!(
            method["AuthorizationType"].as_str(),
            Some("NONE"),
            "{resource}"
        );
        let integration = &method["Integration"];
        assert_eq!(integration["Type"].as_str(), Some("AWS_PROXY"));
        assert_eq!(integration["IntegrationHttpMethod"].as_str(), Some("POST"));
        assert_eq!(
            integration["ResponseTransferMode"].as_str(),
            Some("STREAM"),
            "{resource}"
        );
        // Lambda's InvokeWithResponseStream, on this function.
        assert_eq!(
            integration["Uri"].as_str(),
            Some(
                "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/${ProxyFunction.Arn}/response-streaming-invocations"
            ),
            "{resource}"
        );
        // API Gateway never cuts off an answer the function is still writing: its timeout is at
        // least the function's, and at most the 15 minutes of a streamed answer.
        let limit = integration["TimeoutInMillis"].as_i64().expect("a timeout");
        assert!(
            (timeout_ms..=900_000).contains(&limit),
            "{resource}: {limit} ms"
        );
    }

    // The methods deployed to one stage.
    let deployment = &resources["RestApiDeployment"];
    let depends: BTreeSet<&str> = deployment["DependsOn"]
        .as_vec()
        .expect("DependsOn")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(
        depends,
        BTreeSet::from(["RestApiProxyMethod", "RestApiRootMethod"])
    );
    let stage = &resources["RestApiStage"]["Properties"];
    assert_eq!(stage["DeploymentId"].as_str(), Some("RestApiDeployment"));
    assert_eq!(stage["RestApiId"].as_str(), Some("RestApi"));
    // The URL is the stage's.
    assert_eq!(
        resolved(
            &template,
            &["Streaming"],
            &template["Outputs"]["ApiUrl"]["Value"]
        )
        .as_str(),
        Some("https://${RestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${RestApiStage}/")
    );
}

#[test]
fn streaming_mode_is_throttled_and_access_logged_as_the_http_api() {
    let template = template();
    let resources = resources_with(&template, &["Streaming"]);
    let stage = &resources["RestApiStage"]["Properties"];
    let settings = stage["MethodSettings"].as_vec().expect("method settings");
    let [every] = settings.as_slice() else {
        panic!("one setting for every method: {settings:?}")
    };
    assert_eq!(every["ResourcePath"].as_str(), Some("/*"));
    assert_eq!(every["HttpMethod"].as_str(), Some("*"));
    let http = &template["Resources"]["HttpApiStage"]["Properties"]["DefaultRouteSettings"];
    for property in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
        // The same parameters as the HTTP API's default route.
        assert_eq!(every[property].as_str(), Some(property));
        assert_eq!(every[property], http[property]);
    }

    let log = &stage["AccessLogSetting"];
    assert_eq!(
        log["DestinationArn"].as_str(),
        Some("ApiAccessLogGroup.Arn"),
        "the HTTP API's log group, kept as long"
    );
    let format = log["Format"].as_str().expect("an access log format");
    let line: Value = serde_json::from_str(format).expect("the access log format is JSON");
    for (field, variable) in [
        ("requestId", "$context.requestId"),
        ("status", "$context.status"),
        ("path", "$context.path"),
        ("integrationError", "$context.integration.error"),
        ("transferMode", "$context.integration.responseTransferMode"),
        (
            "timeToFirstContent",
            "$context.integration.timeToFirstContent",
        ),
    ] {
        assert_eq!(line[field].as_str(), Some(variable), "{field}");
    }
    // Every field of the HTTP API's line, so that one query reads both.
    let http_format =
        template["Resources"]["HttpApiStage"]["Properties"]["AccessLogSettings"]["Format"]
            .as_str()
            .expect("the HTTP API's format");
    let http_line: Value = serde_json::from_str(http_format).expect("JSON");
    for field in http_line.as_object().expect("fields").keys() {
        assert!(line.get(field).is_some(), "{field} in the REST API's line");
    }
    // No header is logged: an Authorization value would be a token in the log.
    assert!(!format.contains("header"), "{format}");
}

#[test]
fn streaming_mode_lets_only_the_rest_api_invoke_the_function() {
    let template = template();
    let resources = resources_with(&template, &["Streaming"]);
    let permissions = resources_of_type(&resources, "AWS::Lambda::Permission");
    let [(name, permission)] = permissions.as_slice() else {
        panic!("one permission: {permissions:?}")
    };
    assert_eq!(*name, "RestApiInvokesProxy");
    let properties = &permission["Properties"];
    assert_eq!(properties["Action"].as_str(), Some("lambda:InvokeFunction"));
    assert_eq!(properties["FunctionName"].as_str(), Some("ProxyFunction"));
    assert_eq!(
        properties["Principal"].as_str(),
        Some("apigateway.amazonaws.com")
    );
    assert_eq!(
        properties["SourceArn"].as_str(),
        Some("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RestApi}/*")
    );
}

#[test]
fn streaming_mode_gives_the_function_the_time_of_a_whole_download() {
    let template = template();
    let timeout = timeout_seconds(&template, &["Streaming"]);
    // Lambda streams up to 200 MB, the first 6 MB uncapped, the rest at most 2 MB/s.
    assert!(timeout >= (200 - 6) / 2, "{timeout} s");
    assert!(timeout <= 900, "no more than a streamed answer may take");
    for (on, seconds) in [(&[][..], 10), (&["Streaming"][..], timeout)] {
        let resources = resources_with(&template, on);
        let p99 = &resources["DurationP99Alarm"]["Properties"];
        assert_eq!(
            p99["Threshold"].as_i64(),
            Some(seconds * 1000 * 8 / 10),
            "{on:?}: 80 % of the timeout"
        );
        // `!Sub [text, {Timeout: …}]`: the description names this mode's timeout.
        assert_eq!(
            p99["AlarmDescription"][1]["Timeout"].as_str(),
            Some(seconds.to_string().as_str()),
            "{on:?}"
        );
        assert!(
            dashboard_body(&template, on)
                .to_string()
                .contains(&format!("Lambda's p99 against the {seconds} s timeout")),
            "{on:?}"
        );
    }
}

#[test]
fn the_jwt_authorizer_is_refused_with_streaming_at_deploy_time() {
    let template = template();
    let rules = template["Rules"].as_hash().expect("Rules");
    let refusing: Vec<&Yaml> = rules
        .values()
        .filter(|rule| {
            rule["RuleCondition"]
                == Yaml::Array(vec![
                    Yaml::String("ResponseMode".into()),
                    Yaml::String("streaming".into()),
                ])
        })
        .collect();
    let [rule] = refusing.as_slice() else {
        panic!("one rule for ResponseMode=streaming: {rules:?}")
    };
    let [assertion] = rule["Assertions"].as_vec().expect("assertions").as_slice() else {
        panic!("one assertion")
    };
    assert_eq!(
        assertion["Assert"],
        Yaml::Array(vec![
            Yaml::String("JwtAuthorizer".into()),
            Yaml::String("Disabled".into())
        ])
    );
    let text = assertion["AssertDescription"].as_str().expect("a message");
    for words in [
        "JwtAuthorizer=Enabled",
        "ResponseMode=buffered",
        "JwtAuthorizer=Disabled",
    ] {
        assert!(text.contains(words), "{words}: {text}");
    }
    // And the authorizer's condition holds in buffered mode only, so that no variant deploys
    // an authorizer on an API that is not there.
    let condition = &template["Conditions"]["UseJwtAuthorizer"];
    assert!(
        condition
            .as_vec()
            .is_some_and(|terms| terms.contains(&Yaml::String("Buffered".into()))),
        "{condition:?}"
    );
    let streaming = resources_with(&template, &["Streaming"]);
    assert!(resources_of_type(&streaming, "AWS::ApiGatewayV2::Authorizer").is_empty());
}

#[test]
fn streaming_mode_alarms_on_the_rest_api_stages_metrics() {
    let template = template();
    let resources = resources_with(&template, &["Streaming", "HasAlarmTopic"]);
    let api_name = resources["RestApi"]["Properties"]["Name"]
        .as_str()
        .expect("the REST API's name");
    let rate = &resources["ServerErrorRateAlarm"]["Properties"];
    let metrics = rate["Metrics"].as_vec().expect("metric math");
    for (id, name) in [("errors", "5XXError"), ("requests", "Count")] {
        let metric = &metrics
            .iter()
            .find(|m| m["Id"].as_str() == Some(id))
            .expect(id)["MetricStat"]["Metric"];
        assert_eq!(metric["Namespace"].as_str(), Some("AWS/ApiGateway"));
        assert_eq!(metric["MetricName"].as_str(), Some(name));
        let dimensions: Vec<(&str, &str)> = metric["Dimensions"]
            .as_vec()
            .expect("dimensions")
            .iter()
            .map(|d| {
                (
                    d["Name"].as_str().expect("a name"),
                    d["Value"].as_str().expect("a value"),
                )
            })
            .collect();
        assert_eq!(
            dimensions,
            [("ApiName", api_name), ("Stage", "RestApiStage")],
            "{id}"
        );
    }
    assert_eq!(rate["AlarmActions"][0].as_str(), Some("AlarmTopicArn"));
}

#[test]
fn the_streaming_dashboard_draws_the_rest_api() {
    let template = template();
    let api_name = template["Resources"]["RestApi"]["Properties"]["Name"]
        .as_str()
        .expect("a name")
        .replace("${AWS::StackName}", "stack");
    for (on, first) in [
        (
            &[][..],
            json!([
                ["AWS/ApiGateway", "Count", "ApiId", "api", {"label": "requests"}],
                [".", "4xx", ".", ".", {"label": "4xx"}],
                [".", "5xx", ".", ".", {"label": "5xx"}]
            ]),
        ),
        (
            &["Streaming"][..],
            json!([
                ["AWS/ApiGateway", "Count", "ApiName", api_name, "Stage", "prod", {"label": "requests"}],
                [".", "4XXError", ".", ".", ".", ".", {"label": "4xx"}],
                [".", "5XXError", ".", ".", ".", ".", {"label": "5xx"}]
            ]),
        ),
    ] {
        let body = dashboard_body(&template, on);
        assert_eq!(body["widgets"][0]["properties"]["metrics"], first, "{on:?}");
    }
}

#[test]
fn in_streaming_mode_the_function_answers_cors_itself() {
    let template = template();
    let resources = resources_with(&template, &["Streaming", "HasAllowedOrigins"]);
    // No API Gateway CORS configuration: the REST API has none, so every OPTIONS goes through
    // the ANY methods to the function, which answers it from ALLOWED_ORIGINS.
    for (name, resource) in &resources {
        assert!(
            resource["Properties"]["CorsConfiguration"].is_badvalue(),
            "{name}"
        );
    }
    assert!(
        rest_methods(&resources)
            .iter()
            .all(|(_, method, _)| method == "ANY")
    );
    let variables = &resources["ProxyFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["ALLOWED_ORIGINS"].as_str(),
        Some("AllowedOrigins")
    );
}
