//! The fleet at scale (issue 41): [`ENVIRONMENTS`] real release `bootstrap` processes on one
//! token table (moto), [`USERS`] users whose calls follow a Zipf popularity over a window of
//! [`Shape::window`], half through identities read from the Management API (GitHub, single-use
//! refresh tokens), half through Token Vault (Google), every IdP token living
//! [`Shape::lifetime`]; the
//! stand-in tenant enforcing a plan's rate limits (Free, then Essentials). Then the first answer
//! of a new environment after its cold start, beside the floor of sequential round trips.
//!
//! Time is not compressed: the function's own clocks (a tenth of a token's lifetime kept back,
//! its 30 s and 60 s profile windows, 10 reads a user a minute, leases) and Auth0's buckets all run
//! on the wall clock, so the simulated window is a short stretch of real time with short token
//! lifetimes, not a long one played faster.
//!
//! Each figure is printed beside its floor, computed from the calls as they ran (each call's
//! start and environment): what a design that never repeats work could reach.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use standin::{Flavor, Idp, M2M_CLIENT_ID, Moto, Plan, TokenBuilder};

use crate::lambda::Function;
use crate::relay::{Delay, Relay};
use crate::report::{Report, millis};
use crate::stats::{Timings, median};
use crate::world::{self, World};

/// Execution environments, real `bootstrap` processes.
const ENVIRONMENTS: usize = 20;
/// Users of the tenant; even numbers linked to GitHub (identities), odd ones Google (Token Vault).
const USERS: usize = 5000;
/// The Zipf exponent: user of rank k called with weight 1 / k^s.
const ZIPF_S: f64 = 1.0;

/// The window's shape, from the command line (`--scale-window`, `--scale-lifetime`,
/// `--scale-rate`): the default is a short run; realistic token lifetimes need a longer window.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// The simulated window: wall-clock time over which calls arrive.
    pub window: Duration,
    /// How long every IdP access token lives (GitHub's after a grant, Token Vault's tokensets).
    pub lifetime: Duration,
    /// Calls a second offered, Poisson arrivals.
    pub rate: f64,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            lifetime: Duration::from_secs(20),
            rate: 30.0,
        }
    }
}
/// The Auth0 API (the function's callers' tokens are for it).
const AUDIENCE: &str = "https://proxy.example.test/api";
/// The GitHub App that renews GitHub tokens.
const GITHUB_APP: (&str, &str) = ("scale-github-app", "scale-github-app-secret");

/// Each Auth0 request (token endpoint, Management API, JWKS).
const AUTH0: Delay = Delay {
    handshake: Duration::ZERO,
    request: Duration::from_millis(30),
};
/// Each IdP request (API and token endpoint).
const IDP: Delay = Delay {
    handshake: Duration::ZERO,
    request: Duration::from_millis(30),
};
/// Each Secrets Manager request.
const SECRETS: Delay = Delay {
    handshake: Duration::ZERO,
    request: Duration::from_millis(20),
};
/// Each DynamoDB request.
const DYNAMODB: Duration = Duration::from_millis(3);

/// splitmix64: a small deterministic generator, so that every run calls the same schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// One call of the schedule: when (from the window's start) and by whom.
#[derive(Debug, Clone, Copy)]
struct Planned {
    at: Duration,
    user: usize,
    pick: u64,
}

/// The calls of the window: Poisson arrivals at the shape's rate, users drawn by Zipf rank.
fn schedule(seed: u64, shape: Shape) -> Vec<Planned> {
    let mut rng = Rng(seed);
    let weights: Vec<f64> = (1..=USERS).map(|k| 1.0 / (k as f64).powf(ZIPF_S)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(USERS);
    let mut sum = 0.0;
    for w in weights {
        sum += w / total;
        cdf.push(sum);
    }
    let mut calls = Vec::new();
    let mut at = 0.0;
    loop {
        at += -rng.unit().ln() / shape.rate;
        if at >= shape.window.as_secs_f64() {
            return calls;
        }
        let u = rng.unit();
        let user = cdf.partition_point(|c| *c < u).min(USERS - 1);
        calls.push(Planned {
            at: Duration::from_secs_f64(at),
            user,
            pick: rng.next(),
        });
    }
}

/// DynamoDB requests by operation, counted from the `X-Amz-Target` of each request through a
/// relay in front of moto that also adds [`DYNAMODB`] to each request.
#[derive(Debug, Default)]
struct TableCounts(Mutex<HashMap<String, usize>>);

impl TableCounts {
    fn snapshot(&self) -> HashMap<String, usize> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn count(&self, text: &[u8]) {
        const TARGET: &[u8] = b"DynamoDB_20120810.";
        let mut rest = text;
        while let Some(at) = find(rest, TARGET) {
            let after = &rest[at + TARGET.len()..];
            let end = after
                .iter()
                .position(|b| !b.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            let op = String::from_utf8_lossy(&after[..end]).into_owned();
            if let Ok(mut map) = self.0.lock() {
                *map.entry(op).or_default() += 1;
            }
            rest = &after[end..];
        }
        // Which writes are which, by their update expression (src/fleet/table.rs): taking a
        // renewal's lease, and counting a Management read against the user's fleet budget.
        for (label, marker) in [
            ("of which lease", b"SET lease_owner = :owner".as_slice()),
            ("of which budget", b"ADD n :one".as_slice()),
        ] {
            let mut rest = text;
            while let Some(at) = find(rest, marker) {
                if let Ok(mut map) = self.0.lock() {
                    *map.entry(label.to_owned()).or_default() += 1;
                }
                rest = &rest[at + marker.len()..];
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A world for the scale run: the bench's [`World`] (tenant and GitHub behind relays, the token
/// table) plus a stand-in Google for Token Vault, Secrets Manager and DynamoDB behind relays, the
/// GitHub App in the secret, and every user.
struct Scale {
    world: World,
    shape: Shape,
    extra: Vec<(&'static str, String)>,
    counts: Arc<TableCounts>,
    /// Per user: when Auth0's token for them expires at the IdP (GitHub: the identity's token;
    /// Google: Token Vault's tokenset).
    expiries: Vec<Instant>,
    jwts: Mutex<HashMap<usize, String>>,
}

impl Scale {
    async fn start(moto: &Moto, seed: u64, shape: Shape) -> Result<Self, String> {
        let mut world = World::start_split(moto, Some((AUTH0, IDP))).await?;
        world.add_token_table(moto, Delay::default()).await?;
        let google = Idp::start_as(Flavor::Google)
            .await
            .map_err(|e| format!("stand-in Google: {e}"))?;
        let google_relay = Relay::start(&google.origin(), IDP).await?;
        let secrets_relay = Relay::start(moto.endpoint(), SECRETS).await?;
        let counts = Arc::new(TableCounts::default());
        // A relay in front of moto: each request counted by its operation, and delayed.
        let counting = Arc::clone(&counts);
        let dynamodb = Relay::watched(
            moto.endpoint(),
            Delay {
                handshake: Duration::ZERO,
                request: DYNAMODB,
            },
            Some(Arc::new(move |chunk: &[u8]| counting.count(chunk))),
        )
        .await?
        .origin();

        // The GitHub App's credentials beside the M2M client's and the table's key.
        let env = world.process_env("unused");
        let var = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let secret_id = var("CREDENTIALS_SECRET_ID");
        let secrets = world.secrets(None).await;
        let current = secrets
            .get_secret_value()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|e| format!("reading the secret: {e}"))?;
        let mut secret: Value = serde_json::from_str(current.secret_string().unwrap_or("{}"))
            .map_err(|e| format!("secret: {e}"))?;
        secret["idp_clients"] =
            json!({"github": {"client_id": GITHUB_APP.0, "client_secret": GITHUB_APP.1}});
        secrets
            .put_secret_value()
            .secret_id(&secret_id)
            .secret_string(secret.to_string())
            .send()
            .await
            .map_err(|e| format!("writing the secret: {e}"))?;

        let github = world.github_origin();
        let connections = json!({
            "github": {"api_base": github, "token_url": format!("{github}/login/oauth/access_token")},
            "google-oauth2": {"api_base": google_relay.origin(), "token_source": "token_vault"},
        });
        let extra = vec![
            ("IDP_CONNECTIONS", connections.to_string()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_relay.origin()),
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
        ];

        world.github.register_client(GITHUB_APP.0, GITHUB_APP.1);
        world.github.set_token_lifetime(shape.lifetime);
        world.github.set_rotation(true);
        let tenant = &world.tenant;
        tenant.enable_token_vault("google-oauth2", &google, shape.lifetime);
        tenant.add_token_vault_client(M2M_CLIENT_ID, None, AUDIENCE);
        let mut rng = Rng(seed ^ 0xA5A5);
        let mut expiries = Vec::with_capacity(USERS);
        for n in 0..USERS {
            let person = json!({"login": format!("user{n}"), "id": n});
            if n.is_multiple_of(2) {
                // Logged in some time ago: what is left of the token is spread over its lifetime.
                let access = format!("gho_scale_{n}");
                let refresh = format!("ghr_scale_{n}");
                let left = shape.lifetime.mul_f64(rng.unit());
                world.github.grant_for(&access, person.clone(), left);
                world.github.issue_refresh_token(&refresh, person);
                let mut profile = standin::profile(&sub(n), &[("github", &n.to_string(), &access)]);
                profile["identities"][0]["refresh_token"] = json!(refresh);
                tenant.add_user(profile);
                expiries.push(Instant::now() + left);
            } else {
                tenant.add_user(standin::profile(&sub(n), &[]));
                tenant.connect_account(&sub(n), "google-oauth2", person);
                expiries.push(Instant::now() + shape.lifetime);
            }
        }
        Ok(Self {
            world,
            shape,
            extra,
            counts,
            expiries,
            jwts: Mutex::new(HashMap::new()),
        })
    }

    /// The event of a call by user `n`.
    fn event(&self, n: usize) -> String {
        let jwt = {
            let mut jwts = self.jwts.lock().unwrap_or_else(|e| e.into_inner());
            jwts.entry(n)
                .or_insert_with(|| {
                    let issuer = format!("{}/", self.auth0_origin());
                    TokenBuilder::new(&issuer, AUDIENCE, &sub(n)).sign()
                })
                .clone()
        };
        let event = world::event(&jwt);
        if n.is_multiple_of(2) {
            event
        } else {
            event.replace("/idp/github/user", "/idp/google-oauth2/userinfo")
        }
    }

    fn auth0_origin(&self) -> String {
        self.world
            .relays
            .as_ref()
            .map_or_else(|| self.world.tenant.origin(), |r| r.auth0.origin())
    }

    async fn function(&self, bootstrap: &Path, log: &Path) -> Result<Function, String> {
        self.world.function(bootstrap, &self.extra, log).await
    }
}

/// User `n`'s Auth0 `sub`.
fn sub(n: usize) -> String {
    if n.is_multiple_of(2) {
        format!("github|{n}")
    } else {
        format!("google-oauth2|{n}")
    }
}

/// One call as it ran.
#[derive(Debug, Clone, Copy)]
struct Ran {
    user: usize,
    env: usize,
    started: Instant,
    status: u16,
    latency: Duration,
    queued: Duration,
}

/// Runs the schedule over the environments: each call waits for an idle environment (one
/// invocation at a time each, as Lambda's), picked at random among the idle ones.
async fn drive(scale: &Scale, envs: Arc<Vec<Function>>, plan: &[Planned]) -> Vec<Ran> {
    let idle = Arc::new(Mutex::new((0..envs.len()).collect::<Vec<usize>>()));
    let permits = Arc::new(tokio::sync::Semaphore::new(envs.len()));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(plan.len());
    for call in plan {
        let event = scale.event(call.user);
        let (envs, idle, permits) = (Arc::clone(&envs), Arc::clone(&idle), Arc::clone(&permits));
        let call = *call;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start + call.at).await;
            let due = Instant::now();
            let permit = permits.acquire_owned().await.ok();
            let env = {
                let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
                let i = (call.pick % idle.len().max(1) as u64) as usize;
                idle.swap_remove(i)
            };
            let started = Instant::now();
            let (status, latency) = envs[env]
                .invoke(&event)
                .await
                .unwrap_or((0, Duration::ZERO));
            idle.lock().unwrap_or_else(|e| e.into_inner()).push(env);
            drop(permit);
            Ran {
                user: call.user,
                env,
                started,
                status,
                latency,
                queued: started.saturating_duration_since(due),
            }
        }));
    }
    let mut ran = Vec::with_capacity(plan.len());
    for task in tasks {
        if let Ok(call) = task.await {
            ran.push(call);
        }
    }
    ran.sort_by_key(|r| r.started);
    ran
}

/// What the calls answered 200, as they ran, need at least.
#[derive(Debug, Default)]
struct Floors {
    github_users: usize,
    /// GitHub users whose Management read the plan's bucket served.
    github_served: usize,
    vault_users: usize,
    /// Refresh grants: a user's call finding their token expired renews it, once.
    grants: usize,
    /// Token Vault exchanges: one per token a vault user's calls need (Auth0 renews an expired
    /// tokenset on the exchange).
    exchanges: usize,
    /// One table read per (environment, user, token) used: memory first.
    table_reads: usize,
    /// One table write per token obtained (read from Auth0, renewed, exchanged), and the
    /// Management token.
    table_writes: usize,
    /// Calls whose floor Auth0 request (Management read, exchange) the plan's bucket could not
    /// serve at the call's start.
    refused: usize,
}

fn floors(ran: &[Ran], scale: &Scale, plan: Plan, answered_only: bool) -> Floors {
    let (expiries, shape) = (&scale.expiries, scale.shape);
    let mut floor = Floors::default();
    // Per user served: the expiry of the token in use, and its generation.
    let mut state: HashMap<usize, (Instant, usize)> = HashMap::new();
    let mut tokenset: HashMap<usize, Instant> = HashMap::new();
    let mut called: HashSet<usize> = HashSet::new();
    let mut seen: HashSet<(usize, usize, usize)> = HashSet::new();
    let (mut management, mut authentication) = buckets(plan);
    // The plan's buckets decide which calls' necessary request is served; a refused call leaves
    // its user unserved, so that user's next call needs the request again. Calls answered 200
    // were served whatever the buckets say.
    for call in ran.iter().filter(|r| !answered_only || r.status == 200) {
        let user = call.user;
        let t = call.started;
        let first = called.insert(user);
        let generation = if user.is_multiple_of(2) {
            floor.github_users += usize::from(first);
            let entry = match state.entry(user) {
                Entry::Occupied(served) => served.into_mut(),
                Entry::Vacant(unserved) => {
                    if !answered_only && !management.take(t) {
                        floor.refused += 1;
                        continue;
                    }
                    floor.github_served += 1;
                    floor.table_writes += 1;
                    unserved.insert((expiries[user], 0))
                }
            };
            if t >= entry.0 {
                floor.grants += 1;
                floor.table_writes += 1;
                *entry = (t + shape.lifetime, entry.1 + 1);
            }
            entry.1
        } else {
            floor.vault_users += usize::from(first);
            let served = state.get(&user).copied();
            if served.is_none_or(|(expires, _)| t >= expires) {
                if !answered_only && !authentication.iter_mut().all(|b| b.take(t)) {
                    floor.refused += 1;
                    continue;
                }
                floor.exchanges += 1;
                floor.table_writes += 1;
                let held = tokenset.entry(user).or_insert(expiries[user]);
                if *held <= t {
                    *held = t + shape.lifetime;
                }
                let generation = served.map_or(0, |(_, g)| g + 1);
                state.insert(user, (*held, generation));
            }
            state.get(&user).map_or(0, |(_, g)| *g)
        };
        seen.insert((call.env, user, generation));
    }
    floor.table_reads = seen.len();
    floor.table_writes += 1;
    floor
}

/// The plan's buckets, as the stand-in enforces them, for the floor's count of refusals.
fn buckets(plan: Plan) -> (Bucket, Vec<Bucket>) {
    match plan {
        Plan::Free => (
            Bucket::new(2.0, 2.0),
            vec![Bucket::new(300.0, 5.0), Bucket::new(30.0, 30.0)],
        ),
        _ => (
            Bucket::new(40.0, 500.0 / 60.0),
            vec![Bucket::new(25.0, 25.0)],
        ),
    }
}

struct Bucket {
    burst: f64,
    rate: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn new(burst: f64, rate: f64) -> Self {
        Self {
            burst,
            rate,
            tokens: burst,
            at: None,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Lines of `log` that say the table was degraded.
fn degraded_lines(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|text| {
            text.lines()
                .filter(|l| l.contains("token table degraded"))
                .count()
        })
        .unwrap_or_default()
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// A figure beside its floor; `why` printed when above it.
fn beside(report: &mut Report, figure: &str, measured: f64, floor: f64, why: &str) {
    let above = measured > floor * 1.0001 + 1e-9;
    report.check(
        figure,
        format!("{measured:.3} (floor {floor:.3})"),
        "floor",
        !above,
    );
    if above {
        report.info("   above it because", why);
    }
}

/// One plan: the fleet started, the window run, every figure beside its floor.
async fn one_plan(
    report: &mut Report,
    moto: &Moto,
    bootstrap: &Path,
    log: &Path,
    plan: Plan,
    shape: Shape,
) -> Result<(), String> {
    let seed = 41;
    let scale = Scale::start(moto, seed, shape).await?;
    scale.world.tenant.enforce_plan(plan);
    let calls = schedule(seed, shape);
    for call in &calls {
        scale.event(call.user);
    }
    let degraded_before = degraded_lines(log);
    let mut envs = Vec::with_capacity(ENVIRONMENTS);
    for _ in 0..ENVIRONMENTS {
        envs.push(scale.function(bootstrap, log).await?);
    }
    let envs = Arc::new(envs);
    let wall = Instant::now();
    let ran = drive(&scale, Arc::clone(&envs), &calls).await;
    let wall = wall.elapsed();
    if let Ok(envs) = Arc::try_unwrap(envs) {
        for env in envs {
            env.stop().await;
        }
    }
    let floor = floors(&ran, &scale, plan, true);
    // Every call's demand: users called, and the requests the plan could not serve at the
    // floor.
    let demand = floors(&ran, &scale, plan, false);
    let tenant = &scale.world.tenant;
    let ops = scale.counts.snapshot();
    let op = |name: &str| ops.get(name).copied().unwrap_or_default();
    let reads = op("GetItem") + op("Query") + op("BatchGetItem") + op("Scan");
    let writes = op("PutItem")
        + op("UpdateItem")
        + op("DeleteItem")
        + op("BatchWriteItem")
        + op("TransactWriteItems");
    let statuses = ran.iter().fold(HashMap::<u16, usize>::new(), |mut m, r| {
        *m.entry(r.status).or_default() += 1;
        m
    });
    let answered = |s: u16| statuses.get(&s).copied().unwrap_or_default();
    let mut ok = Timings::default();
    let mut all = Timings::default();
    let mut queued = Timings::default();
    for call in &ran {
        all.push(call.latency);
        queued.push(call.queued);
        if call.status == 200 {
            ok.push(call.latency);
        }
    }
    let users_called: HashSet<usize> = ran.iter().map(|r| r.user).collect();

    report.section(
        &format!("Fleet at scale, {plan:?} plan"),
        &format!(
            "{ENVIRONMENTS} real bootstraps on one table (moto); {USERS} users, {} called, Zipf \
             s = {ZIPF_S}; {} calls over {} s ({}/s offered, ran in {:.1} s); GitHub via \
             identities and Google via Token Vault, tokens living {} s; Auth0 and IdPs {} ms a \
             request, Secrets Manager {} ms, DynamoDB {} ms",
            users_called.len(),
            ran.len(),
            shape.window.as_secs(),
            shape.rate,
            wall.as_secs_f64(),
            shape.lifetime.as_secs(),
            AUTH0.request.as_millis(),
            SECRETS.request.as_millis(),
            DYNAMODB.as_millis()
        ),
    );
    let mut other: Vec<String> = statuses
        .iter()
        .filter(|(s, _)| **s != 200 && **s != 429)
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    other.sort();
    report.info(
        "answers: 200 / 429 / other",
        format!(
            "{} / {} / {}",
            answered(200),
            answered(429),
            if other.is_empty() {
                "0".to_owned()
            } else {
                other.join(", ")
            }
        ),
    );
    report.info(
        "users called / answered 200: GitHub (identities); Google (Token Vault)",
        format!(
            "{} / {}; {} / {}",
            demand.github_users, floor.github_users, demand.vault_users, floor.vault_users
        ),
    );
    let reads_admitted = tenant.plan_admitted("user_read");
    let reads_refused = tenant.plan_refused("user_read");
    beside(
        report,
        "Management reads answered per GitHub user called",
        ratio(reads_admitted, demand.github_users),
        ratio(demand.github_served, demand.github_users),
        "floor: one read a user, where the plan's bucket serves it; above it, a token of unknown \
         expiry (as Auth0 stores it) read again after IDP_TOKEN_MAX_AGE to pick up a re-login, \
         and reads by environments that found neither memory nor the table of use at once",
    );
    report.info(
        "Management reads answered 429 by the plan",
        format!("{reads_refused} (of {} requests)", tenant.user_calls()),
    );
    let exchanges = tenant.plan_admitted("token_exchange");
    beside(
        report,
        "token exchanges answered per Token Vault user served",
        ratio(exchanges, floor.vault_users),
        ratio(floor.exchanges, floor.vault_users),
        "floor: one exchange per token a user's calls need; above it, environments that meet an \
         expired tokenset at the same moment each exchange (exchanges take no lease in the \
         table), and a token that expires between the exchange and the IdP's answer",
    );
    report.info(
        "token exchanges answered 429 by the plan",
        tenant.plan_refused("token_exchange"),
    );
    beside(
        report,
        "client-credentials exchanges in all",
        tenant.plan_admitted("client_credentials") as f64,
        1.0,
        "several environments' cold starts found no Management token in the table at once",
    );
    let grants = scale.world.github.grants();
    beside(
        report,
        "refresh grants per expiry (GitHub)",
        ratio(grants, floor.grants),
        1.0,
        "the function renews a tenth of a lifetime before expiry, so a user calling often renews \
         a little more often than the token dies",
    );
    report.info(
        "   refresh grants / expiries the calls ran into",
        format!("{grants} / {}", floor.grants),
    );
    let vault_renewals = scale
        .world
        .tenant
        .vault_tokens_issued()
        .len()
        .saturating_sub(USERS / 2);
    report.info("Token Vault renewals by Auth0", vault_renewals);
    beside(
        report,
        "DynamoDB reads per call",
        ratio(reads, ran.len()),
        ratio(floor.table_reads, ran.len()),
        "floor: one read per (environment, user, token); above it, renewals reading the item \
         before taking its lease, lease waits reading it again, and a refused token's item read \
         to drop it",
    );
    beside(
        report,
        "DynamoDB writes per call",
        ratio(writes, ran.len()),
        ratio(floor.table_writes, ran.len()),
        "floor: one write per token obtained; a renewal also takes a lease (a conditional write) \
         before it stores the result, and each Management read adds to the user's fleet budget \
         counter (an UpdateItem): both counted apart below",
    );
    let mut by_op: Vec<String> = ops.iter().map(|(k, v)| format!("{k} {v}")).collect();
    by_op.sort();
    report.info("   DynamoDB requests by operation", by_op.join(", "));
    report.info(
        "   floor reads / writes in all",
        format!("{} / {}", floor.table_reads, floor.table_writes),
    );
    beside(
        report,
        "share of callers answered 429",
        ratio(answered(429), ran.len()),
        ratio(demand.refused, ran.len()),
        "floor: calls whose necessary Auth0 request the plan's bucket could not serve when the \
         call came (an unserved user's next call needs it again); above it, Auth0 requests \
         beyond the floor's (above) taking from the bucket, the per-user budget (10 reads a \
         minute), and retries after a reset served in another order than the calls came",
    );
    beside(
        report,
        "latency p50, ms (invocation round trip, 200s)",
        ok.median() / 1e3,
        IDP.request.as_secs_f64() * 1e3,
        "floor: one IdP round trip; the rest is the Runtime API round trip, the function's own \
         work and the 2-core machine shared by 20 processes, moto and the stand-ins",
    );
    beside(
        report,
        "latency p99, ms (invocation round trip, 200s)",
        ok.p99() / 1e3,
        (AUTH0.request + IDP.request).as_secs_f64() * 1e3,
        "floor: a user's first call (a Management read, then the IdP); above it, calls that \
         waited out a 429's reset or another environment's lease",
    );
    report.info(
        "latency p50 / p99 of every answer, queueing p99",
        format!(
            "{} / {}, {}",
            millis(all.median()),
            millis(all.p99()),
            millis(queued.p99())
        ),
    );
    report.info(
        "'token table degraded' lines",
        degraded_lines(log).saturating_sub(degraded_before),
    );
    Ok(())
}

/// A new environment's first answer after its cold start, exec to answer (init, the prefetch in
/// it, then the invocation), for a user the table knows and for one never called; medians.
async fn cold_start(
    report: &mut Report,
    moto: &Moto,
    bootstrap: &Path,
    runs: usize,
    log: &Path,
) -> Result<(), String> {
    let runs = runs.clamp(3, 7);
    // No plan enforced: the figure is the round trips, not a bucket's state.
    let scale = Scale::start(moto, 7, Shape::default()).await?;
    // The most called GitHub user, served once by another environment: in the table.
    let known = 0;
    let warm = scale.function(bootstrap, log).await?;
    let answered = warm.invoke(&scale.event(known)).await;
    warm.stop().await;
    if answered?.0 != 200 {
        return Err("the known user's first call failed".to_owned());
    }
    let fresh_users: Vec<usize> = (0..runs).map(|r| USERS - 2 - 2 * r).collect();
    let (mut known_init, mut known_first, mut fresh_init, mut fresh_first) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for fresh in fresh_users {
        for (user, init, first) in [
            (known, &mut known_init, &mut known_first),
            (fresh, &mut fresh_init, &mut fresh_first),
        ] {
            let event = scale.event(user);
            let function = scale.function(bootstrap, log).await?;
            let (status, elapsed) = function.invoke(&event).await?;
            init.push(function.init.as_secs_f64() * 1e6);
            first.push(elapsed.as_secs_f64() * 1e6);
            function.stop().await;
            if status != 200 {
                return Err(format!("a first call answered {status}"));
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // Init: the secret read, then the Management token from the table, beside the JWKS fetch.
    let init_floor = (ms(SECRETS.request) + ms(DYNAMODB)).max(ms(AUTH0.request));
    let known_floor = init_floor + ms(DYNAMODB) + ms(IDP.request);
    let fresh_floor = init_floor + ms(DYNAMODB) + ms(AUTH0.request) + ms(IDP.request);
    report.section(
        "Fleet at scale: a new environment's first answer",
        &format!(
            "real bootstrap, prefetch on, no plan enforced, the known user served once by \
             another environment; Auth0 and IdPs {} ms a \
             request, Secrets Manager {} ms, DynamoDB {} ms; exec to the first answer = init \
             (exec to the first `next`, the prefetch in it) + the invocation; medians of {runs}",
            AUTH0.request.as_millis(),
            SECRETS.request.as_millis(),
            DYNAMODB.as_millis()
        ),
    );
    for (who, init, first, floor, chain) in [
        (
            "a user the table knows",
            &known_init,
            &known_first,
            known_floor,
            "max(secret read + table read, JWKS) → table read → IdP",
        ),
        (
            "a user never called",
            &fresh_init,
            &fresh_first,
            fresh_floor,
            "max(secret read + table read, JWKS) → table read → Management read → IdP",
        ),
    ] {
        let (init, first) = (median(init), median(first));
        report.info(
            &format!("{who}: init + first invocation"),
            format!(
                "{} + {} = {} (floor {floor:.0} ms: {chain})",
                millis(init),
                millis(first),
                millis(init + first)
            ),
        );
    }
    Ok(())
}

/// Every figure of the scale section: Free, then Essentials, then the cold start.
pub async fn run(
    report: &mut Report,
    moto: &Moto,
    bootstrap: &Path,
    runs: usize,
    log: &Path,
    shape: Shape,
) -> Result<(), String> {
    one_plan(report, moto, bootstrap, log, Plan::Free, shape).await?;
    one_plan(report, moto, bootstrap, log, Plan::Essentials, shape).await?;
    cold_start(report, moto, bootstrap, runs, log).await
}
