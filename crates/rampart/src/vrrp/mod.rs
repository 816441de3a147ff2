//! The built-in virtual IP: a VRRP v2/v3 speaker for the `vrrp_instance` blocks of an
//! operator's keepalived.conf (`--vrrp FILE`), wire-compatible with keepalived, so a rampart
//! node and a keepalived node can share an address. The protocol itself is the pure
//! `rampart-vrrp` crate; here are its sockets (`socket`), the interface and its addresses
//! through netlink (`link`), gratuitous ARP (`announce`), one task per virtual router
//! (`speaker`) and the proxy's own health feeding them (`tracking`). They run on a thread of
//! their own, so a busy control plane never delays an advert.

pub mod announce;
pub mod link;
pub mod socket;
pub mod speaker;
pub mod tracking;

use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rampart_config::keepalived::VrrpConfig;
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::admin::vrrp_status::VrrpBoard;
use crate::health::{Probe, ProbeError};
use crate::proxy::Live;
use speaker::{Speaker, SpeakerError};
use tracking::Verdict;

/// Every virtual router of the configuration, ready to run on its own thread.
pub struct Vrrp {
    runtime: Runtime,
    speakers: Vec<Speaker>,
}

/// Why the VRRP speaker could not start.
#[derive(Debug, thiserror::Error)]
pub enum VrrpError {
    #[error("cannot start the VRRP runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Speaker(#[from] SpeakerError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

impl Vrrp {
    /// Looks up every instance's interface and opens its sockets, so that a missing interface
    /// or a missing capability stops start-up with the instance's file:line.
    pub fn prepare(config: &VrrpConfig, board: &Arc<VrrpBoard>) -> Result<Vrrp, VrrpError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(VrrpError::Runtime)?;
        let speakers = runtime.block_on(async {
            let mut speakers = Vec::new();
            for instance in &config.instances {
                speakers.push(Speaker::prepare(instance, Arc::clone(board)).await?);
            }
            Ok::<_, SpeakerError>(speakers)
        })?;
        for speaker in &speakers {
            board.publish(speaker.status());
        }
        Ok(Vrrp { runtime, speakers })
    }

    /// Runs the virtual routers and their health tracking on a thread of their own until the
    /// proxy stops; the thread ends once every master has sent priority 0 and removed its
    /// addresses.
    pub fn spawn(
        self,
        probe: Probe,
        live: Arc<Live>,
        stopping: watch::Receiver<bool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let Vrrp { runtime, speakers } = self;
        thread::Builder::new().name("vrrp".into()).spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                let (verdicts, health) = watch::channel(Verdict::initial());
                tokio::task::spawn_local(tracking::track(probe, live, verdicts, stopping.clone()));
                let running: Vec<_> = speakers
                    .into_iter()
                    .map(|speaker| {
                        tokio::task::spawn_local(speaker.run(health.clone(), stopping.clone()))
                    })
                    .collect();
                for speaker in running {
                    if let Err(error) = speaker.await {
                        tracing::error!("a VRRP speaker ended abnormally: {error}");
                    }
                }
            });
        })
    }
}

/// The initial board: one entry per instance, in configuration order.
pub fn board_for(config: Option<&VrrpConfig>) -> Arc<VrrpBoard> {
    let instances = config
        .map(|config| {
            config
                .instances
                .iter()
                .map(|instance| crate::admin::vrrp_status::InstanceStatus {
                    name: instance.name.clone(),
                    state: rampart_vrrp::State::Initialize,
                    priority: 0,
                    master: None,
                    transitions: 0,
                })
                .collect()
        })
        .unwrap_or_default();
    Arc::new(VrrpBoard::new(instances))
}
