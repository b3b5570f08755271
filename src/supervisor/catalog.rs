//! The catalog: what the supervisor knows from the reloadable part of the configuration
//! (pre-defined groups, the provider's policy, subscription limits), prepared as session
//! settings. A reload builds a new catalog, swaps it in whole, and tells every live session
//! its new settings; nothing a session holds is dropped.

use super::{AdhocSettings, Supervisor, Template};
use crate::config::Config;
use crate::session::{Reconfigure, SessionInput, SessionSettings};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLockReadGuard};
use std::time::Duration;

/// A pre-defined group, prepared for its sessions.
pub(super) struct Group {
    pub settings: Arc<SessionSettings>,
}

/// Groups, templates and policy of one configuration generation.
pub(super) struct Catalog {
    /// Builds session settings for groups and ad-hoc sessions.
    pub template: Arc<Template>,
    /// Groups by URI user part (unescaped).
    pub groups: HashMap<String, Group>,
    pub adhoc: AdhocSettings,
    /// The URI-list service; it keeps no state beyond requests in flight, so a new one per
    /// generation is free.
    pub list_service: Arc<crate::list_service::ListService>,
}

impl Catalog {
    /// Prepares `config`'s groups and policy for the bound transports in `settings`.
    /// `xdms` are the groups read from the XDMS: a `[[groups]]` entry with the same URI wins.
    pub fn build(
        config: &Config,
        xdms: &[crate::config::GroupConfig],
        settings: &super::SupervisorSettings,
        endpoint: &crate::endpoint::Endpoint,
        charging: &crate::charging::ChargingHandle,
    ) -> Catalog {
        let template = Arc::new(Template::new(config, settings));
        let mut groups = HashMap::new();
        let file = config.groups.iter().map(|g| (g, false));
        for (g, from_xdms) in file.chain(xdms.iter().map(|g| (g, true))) {
            let Ok(uri) = crate::sip::Uri::parse(&g.uri) else {
                continue;
            };
            let (Some(user), Some(raw_user)) = (
                uri.user_unescaped().map(|u| u.into_owned()),
                uri.user.as_deref(),
            ) else {
                continue;
            };
            if from_xdms && groups.contains_key(&user) {
                tracing::info!(group = %g.uri, "group defined in the configuration file and the XDMS; the file's wins");
                continue;
            }
            let mut s = template.settings(
                &g.uri,
                raw_user,
                crate::policy::GroupPolicy::for_group(g, &config.policy),
            );
            s.display_name = g.display_name.clone();
            s.subject = g.subject.clone();
            if let (Some(planes), Some(codecs)) = (&settings.talk, &g.codecs) {
                s.talk = Some(crate::push_to_talk::talk_burst::TalkSettings::from_config(
                    config,
                    planes,
                    Some(codecs),
                ));
            }
            groups.insert(
                user,
                Group {
                    settings: Arc::new(s),
                },
            );
        }
        let adhoc = AdhocSettings {
            factory_user: config.focus.factory_user.clone(),
            list_service_user: config.focus.list_service_user.clone(),
            instance: config.focus.instance_id.clone(),
            rule: config.policy.adhoc,
            domains: config.policy.adhoc_domains.clone(),
            provider: config.policy.clone(),
            restart_window: Duration::from_secs(config.focus.restart_window_s),
            max_remembered: config.focus.max_remembered,
        };
        let list_service = Arc::new(crate::list_service::ListService::new(
            endpoint.clone(),
            config.policy.max_list_size,
            config.focus.domain.clone(),
            template.trust.clone(),
            charging.clone(),
            template.base.amplification.clone(),
        ));
        Catalog {
            template,
            groups,
            adhoc,
            list_service,
        }
    }
}

/// What a reload changed among the live sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogChange {
    /// Live sessions told their new settings (the retiring ones included).
    pub sessions_updated: usize,
    /// Live sessions of removed groups: they take no new joins and end when empty.
    pub sessions_retiring: usize,
}

impl Supervisor {
    /// The current catalog.
    pub(super) fn catalog(&self) -> Arc<Catalog> {
        self.catalog_guard().clone()
    }

    /// The current catalog, read-locked: a reload waits until the guard drops.
    pub(super) fn catalog_guard(&self) -> RwLockReadGuard<'_, Arc<Catalog>> {
        self.catalog.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// True once shutdown began: new sessions are refused.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replaces groups and policy with `config`'s (already validated) without dropping a
    /// session: new joins see the new policy, a live session of a removed group takes no new
    /// joins and ends when its last participant leaves, new groups are joinable at once.
    /// Settings outside groups, `[policy]` and `[subscriptions]` are taken from `config` too,
    /// so the caller passes the running values for those (see `crate::reload`).
    pub fn reconfigure(&self, config: &Config) -> CatalogChange {
        if let Some(gate) = &self.settings.auth {
            gate.reload(config);
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        *running = config.clone();
        self.rebuild(&running)
    }

    /// Replaces the groups read from the XDMS, like a reload of the file's groups: new
    /// members may join at once, removed ones are refused, a removed group's live session
    /// takes no new joins and ends when empty.
    pub fn set_xdms_groups(&self, groups: Vec<crate::config::GroupConfig>) -> CatalogChange {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        *self
            .xdms_groups
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(groups);
        self.rebuild(&running)
    }

    /// Tells `/health` how the XDMS client is doing (set once, at start).
    pub fn set_xdms_health(&self, health: Arc<crate::xdms::XdmsHealth>) {
        let _ = self.xdms_health.set(health);
    }

    /// The XDMS client's state, when there is one.
    pub fn xdms_health(&self) -> Option<&Arc<crate::xdms::XdmsHealth>> {
        self.xdms_health.get()
    }

    /// Builds and swaps in the catalog of `config` and the XDMS groups; the caller holds
    /// `running`.
    fn rebuild(&self, config: &Config) -> CatalogChange {
        let xdms = self
            .xdms_groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let next = Arc::new(Catalog::build(
            config,
            &xdms,
            &self.settings,
            &self.endpoint,
            &self.charging,
        ));
        let previous = {
            let mut current = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, next.clone())
        };
        // Every session in the table started under a catalog read guard, so after the swap
        // above each one either started with `next` or is listed here.
        let sessions: Vec<(Box<str>, super::SessionEntry)> = self
            .tables
            .conferences
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        let adhoc_base = Arc::new(next.template.settings(
            "",
            "",
            crate::policy::GroupPolicy::adhoc(&next.adhoc.provider),
        ));
        let mut change = CatalogChange::default();
        for (key, entry) in sessions {
            // A session that is no group of `next` is ad-hoc (new provider policy), or a
            // removed group's (it knows it is pre-defined, and retires).
            let update = match next.groups.get(&*key) {
                Some(g) => Reconfigure::Group(g.settings.clone()),
                None => Reconfigure::Other(adhoc_base.clone()),
            };
            change.sessions_updated += 1;
            if previous.groups.contains_key(&*key) && !next.groups.contains_key(&*key) {
                change.sessions_retiring += 1;
            }
            // Like shutdown, a reconfiguration must get through a full mailbox; it is bounded
            // by the sessions, not by anything a peer sends.
            entry.addr.do_send(SessionInput::Reconfigure(update));
        }
        change
    }
}

impl crate::xdms::GroupCatalog for Supervisor {
    fn apply_xdms_groups(&self, groups: Vec<crate::config::GroupConfig>) -> (usize, usize) {
        let change = self.set_xdms_groups(groups);
        (change.sessions_updated, change.sessions_retiring)
    }

    fn watch_xdms_health(&self, health: Arc<crate::xdms::XdmsHealth>) {
        self.set_xdms_health(health);
    }
}
