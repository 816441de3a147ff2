//! What each virtual router last reported: its state, priority, the master it knows of and how
//! often its state changed. The VRRP speaker writes it after every change; the stats JSON
//! reads it.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;

use rampart_vrrp::State;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    /// The `vrrp_instance` name.
    pub name: String,
    pub state: State,
    /// The priority it advertises now (0 in FAULT).
    pub priority: u8,
    /// The current master's address (its own while master), once known.
    pub master: Option<IpAddr>,
    /// State changes since start.
    pub transitions: u64,
}

/// Every instance's latest status, in configuration order.
#[derive(Debug, Default)]
pub struct VrrpBoard {
    instances: Mutex<Vec<InstanceStatus>>,
}

impl VrrpBoard {
    pub fn new(instances: Vec<InstanceStatus>) -> VrrpBoard {
        VrrpBoard {
            instances: Mutex::new(instances),
        }
    }

    /// Replaces the status of the instance called `status.name`.
    pub fn publish(&self, status: InstanceStatus) {
        let mut instances = self.lock();
        if let Some(slot) = instances.iter_mut().find(|slot| slot.name == status.name) {
            *slot = status;
        }
    }

    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<InstanceStatus>> {
        self.instances
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The stats JSON's VRRP keys, each starting with `, `: scalars at the top level, so tools
/// that read every top-level object as a pool see nothing new.
pub fn render_json_keys(instances: &[InstanceStatus], out: &mut String) {
    for instance in instances {
        let name = &instance.name;
        let master = instance
            .master
            .map_or_else(String::new, |address| address.to_string());
        let _ = write!(
            out,
            ", \"vrrp_{name}_state\":\"{}\", \"vrrp_{name}_priority\":{}, \
             \"vrrp_{name}_master\":\"{master}\", \"vrrp_{name}_transitions\":{}",
            instance.state, instance.priority, instance.transitions
        );
    }
}
