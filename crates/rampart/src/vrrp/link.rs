//! The interface a virtual router runs on, through rtnetlink: its index, MAC address and
//! primary IPv4 address, and adding and removing the virtual addresses on it (what
//! `ip addr add VIP/32 dev IF` and `ip addr del` do).

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::Handle;

/// A failed netlink conversation, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("interface '{name}' not found: {reason}")]
    NoInterface { name: String, reason: String },
    #[error("interface '{name}' has no hardware address")]
    NoMac { name: String },
    #[error("interface '{name}' has no IPv4 address to send adverts from")]
    NoPrimary { name: String },
    #[error("{action} {address} on '{interface}': {reason}")]
    Address {
        action: &'static str,
        address: IpAddr,
        interface: String,
        reason: String,
    },
}

/// One network interface, as netlink describes it.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
}

/// A netlink connection, driven by a task on the current runtime.
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    pub fn open() -> Result<Netlink, LinkError> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// Looks the interface up by name.
    pub async fn interface(&self, name: &str) -> Result<Interface, LinkError> {
        let no_interface = |reason: String| LinkError::NoInterface {
            name: name.to_string(),
            reason,
        };
        let message = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await
            .map_err(|error| no_interface(error.to_string()))?
            .ok_or_else(|| no_interface("no such link".to_string()))?;
        let mac = message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| LinkError::NoMac {
                name: name.to_string(),
            })?;
        Ok(Interface {
            name: name.to_string(),
            index: message.header.index,
            mac,
        })
    }

    /// The IPv4 addresses on the interface, in the kernel's order.
    async fn ipv4_addresses(
        &self,
        interface: &Interface,
    ) -> Result<Vec<(Ipv4Addr, AddressMessage)>, LinkError> {
        let failed = |error: rtnetlink::Error| LinkError::NoInterface {
            name: interface.name.clone(),
            reason: error.to_string(),
        };
        let mut addresses = Vec::new();
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(interface.index)
            .execute();
        while let Some(message) = stream.try_next().await.map_err(failed)? {
            let local = message
                .attributes
                .iter()
                .find_map(|attribute| match attribute {
                    AddressAttribute::Local(IpAddr::V4(address))
                    | AddressAttribute::Address(IpAddr::V4(address)) => Some(*address),
                    _ => None,
                });
            if let Some(address) = local {
                addresses.push((address, message));
            }
        }
        Ok(addresses)
    }

    /// The interface's first IPv4 address that is not one of `virtual_addresses`: the source
    /// of adverts, and the tie-break between equal priorities.
    pub async fn primary_ipv4(
        &self,
        interface: &Interface,
        virtual_addresses: &[IpAddr],
    ) -> Result<Ipv4Addr, LinkError> {
        self.ipv4_addresses(interface)
            .await?
            .into_iter()
            .map(|(address, _)| address)
            .find(|address| !virtual_addresses.contains(&IpAddr::V4(*address)))
            .ok_or_else(|| LinkError::NoPrimary {
                name: interface.name.clone(),
            })
    }

    /// Adds `address/prefix_len` to the interface (replacing it if it is there already).
    pub async fn add(
        &self,
        interface: &Interface,
        address: IpAddr,
        prefix_len: u8,
    ) -> Result<(), LinkError> {
        self.handle
            .address()
            .add(interface.index, address, prefix_len)
            .replace()
            .execute()
            .await
            .map_err(|error| LinkError::Address {
                action: "cannot add",
                address,
                interface: interface.name.clone(),
                reason: error.to_string(),
            })
    }

    /// Removes `address` from the interface; returns whether it was there.
    pub async fn remove(&self, interface: &Interface, address: IpAddr) -> Result<bool, LinkError> {
        let IpAddr::V4(wanted) = address else {
            return Ok(false);
        };
        let mut removed = false;
        for (found, message) in self.ipv4_addresses(interface).await? {
            if found != wanted {
                continue;
            }
            self.handle
                .address()
                .del(message)
                .execute()
                .await
                .map_err(|error| LinkError::Address {
                    action: "cannot remove",
                    address,
                    interface: interface.name.clone(),
                    reason: error.to_string(),
                })?;
            removed = true;
        }
        Ok(removed)
    }
}
