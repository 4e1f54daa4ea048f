//! The fleet table as a level between the memory cache and a [`TokenSource`]: what one
//! environment read from Auth0 or renewed, every environment finds in the table.
//!
//! - `stored` answers from the table while its token is fresh (labelled [`Stored::shared`], so
//!   that after the IdP refuses it the source is still read), else reads the wrapped source and
//!   shares the result; values the source still holds but the fleet has superseded (a rotated
//!   single-use refresh token) are not taken back.
//! - `renew` runs under the table's lease: one grant for the whole fleet, with the newest refresh
//!   token the fleet knows, presented once; the others wait and take its result.
//! - `refused` drops a token the IdP refused, so no environment is handed it again.
//!
//! Without a usable table (unset, keys unusable, or failing) it is the wrapped source itself.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::tokens::TokenKey;
use super::tokens::source::{RenewFailure, Renewed, SourceFailure, Stored, TokenSource};
use crate::deadline::Deadline;
use crate::fleet::table::now_millis;
use crate::fleet::{self, Fleet, Turn};
use crate::freshness::Renewal;
use crate::secret::{IdpAccessToken, IdpRefreshToken, TokenSecret};

/// Longest an environment holds a renewal's lease: the grant's own cap and some room.
const GRANT_LEASE: Duration = Duration::from_secs(8);

/// How long an item outlives its last write: refresh tokens live for months.
const ITEM_LIFETIME: Duration = Duration::from_secs(180 * 24 * 3600);

/// How long the fleet remembers that a user has no identity at a connection.
const NOT_LINKED_FOR: Duration = Duration::from_secs(60);

/// Least life left in a renewed token for the fleet to hand it out instead of renewing, for an
/// item written before the table kept tokens' lifetimes (those carry the renewal margin of the
/// token's own lifetime instead, as memory does).
const MIN_LIFE_LEFT: Duration = Duration::from_secs(30);

/// One (user, connection)'s tokens as the table keeps them (sealed).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Shared {
    access_token: Option<String>,
    /// The access token's OAuth 1.0a token secret, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_secret: Option<String>,
    /// The scopes the access token was granted, where its issuer said (Token Vault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_scopes: Option<String>,
    /// When the access token expires (epoch ms), where known (renewed tokens).
    access_expires_ms: Option<u64>,
    /// How long the access token was good for when obtained (ms), where its expiry is known:
    /// the renewal margin is a part of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_lifetime_ms: Option<u64>,
    /// When the source was last read (epoch ms).
    read_at_ms: u64,
    /// The newest refresh token the fleet knows.
    refresh_token: Option<String>,
    /// What the source held at its last read, to tell a re-login from superseded values.
    source_access: Option<String>,
    source_refresh: Option<String>,
    /// Until when (epoch ms) the source's answer "no identity at this connection" stands.
    #[serde(default)]
    not_linked_until_ms: Option<u64>,
}

impl Shared {
    /// Makes `token` (with its secret, if it has one) the access token held.
    fn set_access(&mut self, token: Option<&IdpAccessToken>) {
        self.access_token = token.map(|t| t.expose().to_owned());
        self.access_secret = token
            .and_then(|t| t.secret())
            .map(|s| s.expose().to_owned());
        self.access_scopes = token.and_then(|t| t.scopes_text()).map(str::to_owned);
    }

    /// The access token held, with its secret.
    fn access(&self) -> Option<IdpAccessToken> {
        let secret = self.access_secret.as_deref().map(TokenSecret::new);
        self.access_token.as_deref().map(|t| {
            IdpAccessToken::new(t)
                .with_secret(secret)
                .with_scopes(self.access_scopes.as_deref())
        })
    }

    fn life_left(&self, now_ms: u64) -> Option<Duration> {
        self.access_expires_ms
            .map(|expires| Duration::from_millis(expires.saturating_sub(now_ms)))
    }

    /// Sets when the access token expires, obtained at `now_ms` and good for `expires_in`.
    fn set_expiry(&mut self, now_ms: u64, expires_in: Option<Duration>) {
        self.access_expires_ms = expires_in.map(|d| now_ms.saturating_add(millis(d)));
        self.access_lifetime_ms = expires_in.map(millis);
    }

    /// Worth handing out instead of reading the source: a token of known expiry outside the
    /// renewal margin memory would keep back (`renewal`'s part of its lifetime), or a read token
    /// younger than `max_age`.
    fn is_fresh(&self, now_ms: u64, max_age: Duration, renewal: Renewal) -> bool {
        self.access_token.is_some()
            && match self.life_left(now_ms) {
                Some(left) => {
                    left > self.access_lifetime_ms.map_or(MIN_LIFE_LEFT, |lifetime| {
                        renewal.margin(Duration::from_millis(lifetime))
                    })
                }
                None => Duration::from_millis(now_ms.saturating_sub(self.read_at_ms)) < max_age,
            }
    }

    /// Whether it holds a token of known expiry and the refresh token to renew it.
    fn renewable(&self) -> bool {
        self.access_token.is_some()
            && self.access_expires_ms.is_some()
            && self.refresh_token.is_some()
    }

    /// What the table holds, as a source's answer; `shared` when no source was read for it.
    fn stored(&self, now_ms: u64, shared: bool) -> Stored {
        Stored {
            access_token: self.access(),
            refresh_token: self.refresh_token.as_deref().map(IdpRefreshToken::new),
            expires_in: self.life_left(now_ms),
            shared,
        }
    }

    /// Takes in what the source holds now: new values (a re-login) replace the fleet's, values
    /// it already held at the last read do not.
    fn merge(previous: Option<Self>, stored: &Stored, now_ms: u64) -> Self {
        let access = stored.access_token.as_ref().map(|t| t.expose().to_owned());
        let refresh = stored.refresh_token.as_ref().map(|t| t.expose().to_owned());
        let mut next = previous.unwrap_or_default();
        let first = next.read_at_ms == 0 && next.source_access.is_none();
        if first || next.source_access != access {
            next.set_access(stored.access_token.as_ref());
            next.set_expiry(now_ms, stored.expires_in);
        }
        if first || next.source_refresh != refresh {
            next.refresh_token.clone_from(&refresh);
        }
        next.source_access = access;
        next.source_refresh = refresh;
        next.read_at_ms = now_ms;
        next.not_linked_until_ms = None;
        next
    }

    /// The renewed token the table holds; `shared` when another environment's grant. The
    /// table's refresh token is the one to use next: none there means none is left.
    fn renewed(&self, shared: bool) -> Renewed {
        Renewed {
            access_token: self.access().unwrap_or_else(|| IdpAccessToken::new("")),
            refresh_token: self.refresh_token.as_deref().map(IdpRefreshToken::new),
            spent: self.refresh_token.is_none(),
            expires_in: self.life_left(now_millis()),
            shared,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn item_expiry() -> SystemTime {
    SystemTime::now() + ITEM_LIFETIME
}

/// `inner`, with the fleet table in front of it where one is usable.
pub struct FleetSource<'a, S> {
    /// The source below the table.
    pub inner: S,
    /// The table, if configured and its keys usable.
    pub fleet: Option<Fleet<'a>>,
    /// The item's key, naming the (user, connection).
    pub key: String,
    /// How long a token of unknown expiry is handed out before the source is read again.
    pub max_age: Duration,
    /// The tokens the IdP refused during this invocation: the table is not trusted with them
    /// again, even if dropping them from it failed.
    refused: Mutex<Vec<IdpAccessToken>>,
}

impl<'a, S: TokenSource> FleetSource<'a, S> {
    /// `inner` for `key`'s token, behind `fleet`.
    pub fn new(inner: S, fleet: Option<Fleet<'a>>, key: TokenKey<'_>, max_age: Duration) -> Self {
        let TokenKey { user, connection } = key;
        Self {
            inner,
            fleet,
            // Connection names hold no `#`, so the user id (which may) is unambiguous after it.
            key: format!("idp#{connection}#{user}"),
            max_age,
            refused: Mutex::new(Vec::new()),
        }
    }

    /// Whether the table holds a token that the IdP refused during this invocation.
    fn holds_refused(&self, shared: &Shared) -> bool {
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused
            .iter()
            .any(|t| shared.access_token.as_deref() == Some(t.expose()))
    }

    async fn renew_in_turn(
        &self,
        fleet: Fleet<'_>,
        seen: Option<Shared>,
        presented: &IdpRefreshToken,
        deadline: &Deadline,
    ) -> Result<Renewed, RenewFailure<S::Error>> {
        // The newest refresh token the fleet knows; none if the fleet saw it refused.
        let refresh = match &seen {
            Some(shared) => match &shared.refresh_token {
                Some(token) => IdpRefreshToken::new(token.as_str()),
                None => {
                    fleet.abandon(&self.key, deadline).await;
                    return Err(RenewFailure::Refused);
                }
            },
            None => presented.clone(),
        };
        let mut next = seen.unwrap_or_else(|| Shared {
            // What the source holds is, as far as this environment knows, what it renewed from.
            source_refresh: Some(presented.expose().to_owned()),
            read_at_ms: now_millis(),
            ..Shared::default()
        });
        let result = self.inner.renew(&refresh, deadline).await;
        match &result {
            Ok(renewed) => {
                next.set_access(Some(&renewed.access_token));
                next.set_expiry(now_millis(), renewed.expires_in);
                next.refresh_token = match &renewed.refresh_token {
                    Some(rotated) => Some(rotated.expose().to_owned()),
                    None if renewed.spent => None,
                    None => Some(refresh.expose().to_owned()),
                };
            }
            Err(RenewFailure::Refused) => {
                next.set_access(None);
                next.set_expiry(0, None);
                next.refresh_token = None;
            }
            Err(_) => {
                fleet.abandon(&self.key, deadline).await;
                return result;
            }
        }
        if let Err(error) = fleet
            .finish(&self.key, &next, item_expiry(), deadline)
            .await
        {
            fleet::degraded("share a renewed IdP token", &error);
        }
        result.map(|_| next.renewed(false))
    }
}

impl<S: TokenSource> TokenSource for FleetSource<'_, S> {
    type Error = S::Error;

    fn renews_itself(&self) -> bool {
        self.inner.renews_itself()
    }

    async fn stored(&self, deadline: &Deadline) -> Result<Stored, S::Error> {
        let Some(fleet) = self.fleet else {
            return self.inner.stored(deadline).await;
        };
        let record = match fleet.read::<Shared>(&self.key, deadline).await {
            Ok(record) => record,
            Err(error) => {
                fleet::degraded("read an IdP token", &error);
                return self.inner.stored(deadline).await;
            }
        };
        let now = now_millis();
        let (version, shared) = record.map_or((0, None), |r| (r.version, r.value));
        if let Some(shared) = shared.as_ref() {
            if shared.not_linked_until_ms.is_some_and(|until| until > now)
                && let Some(error) = self.inner.not_linked()
            {
                return Err(error);
            }
            let renewal = self.inner.renewal();
            // A token past its margin with the refresh token to renew it goes to the cache as
            // it is: a grant comes next, not a read of Auth0, which holds only what the fleet
            // renewed from unless the user logged in again (the cache reads it if the grant is
            // refused).
            let to_renew = renewal == Renewal::Early && shared.renewable();
            if (to_renew || shared.is_fresh(now, self.max_age, renewal))
                && !self.holds_refused(shared)
            {
                return Ok(shared.stored(now, true));
            }
        }
        let stored = match self.inner.stored(deadline).await {
            Ok(stored) => stored,
            Err(error) if error.is_not_linked() => {
                let remembered = Shared {
                    not_linked_until_ms: Some(now + millis(NOT_LINKED_FOR)),
                    ..shared.unwrap_or_default()
                };
                let expires = SystemTime::now() + NOT_LINKED_FOR;
                if let Err(failure) = fleet
                    .write(&self.key, &remembered, expires, version, deadline)
                    .await
                {
                    fleet::degraded("remember an unlinked connection", &failure);
                }
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let merged = Shared::merge(shared, &stored, now);
        // Losing the race to another environment's write is fine: its values are as good.
        if let Err(error) = fleet
            .write(&self.key, &merged, item_expiry(), version, deadline)
            .await
        {
            fleet::degraded("share an IdP token", &error);
        }
        Ok(merged.stored(now, false))
    }

    async fn renew(
        &self,
        refresh_token: &IdpRefreshToken,
        deadline: &Deadline,
    ) -> Result<Renewed, RenewFailure<S::Error>> {
        let Some(fleet) = self.fleet else {
            return self.inner.renew(refresh_token, deadline).await;
        };
        // Renewed by another environment meanwhile: its token, no grant here.
        let renewed_elsewhere = |s: &Shared| {
            s.access_expires_ms.is_some()
                && s.is_fresh(now_millis(), Duration::ZERO, self.inner.renewal())
                && !self.holds_refused(s)
        };
        match fleet
            .take_turn(&self.key, renewed_elsewhere, GRANT_LEASE, deadline)
            .await
        {
            Ok(Turn::Theirs(shared)) => Ok(shared.renewed(true)),
            Ok(Turn::Mine { seen }) => {
                self.renew_in_turn(fleet, seen, refresh_token, deadline)
                    .await
            }
            // Never a grant without the lease: a single-use refresh token would be spent twice.
            Ok(Turn::Busy) => Err(RenewFailure::OutOfTime),
            Err(error) => {
                fleet::degraded("coordinate a renewal", &error);
                self.inner.renew(refresh_token, deadline).await
            }
        }
    }

    async fn refused(&self, token: &IdpAccessToken, deadline: &Deadline) {
        let Some(fleet) = self.fleet else {
            return;
        };
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(token.clone());
        let record = match fleet.read::<Shared>(&self.key, deadline).await {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(error) => return fleet::degraded("drop a refused IdP token", &error),
        };
        let Some(mut shared) = record
            .value
            .filter(|s| s.access_token.as_deref() == Some(token.expose()))
        else {
            return;
        };
        shared.set_access(None);
        shared.set_expiry(0, None);
        if let Err(error) = fleet
            .write(&self.key, &shared, item_expiry(), record.version, deadline)
            .await
        {
            fleet::degraded("drop a refused IdP token", &error);
        }
    }
}
