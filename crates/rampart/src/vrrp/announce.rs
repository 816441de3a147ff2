//! Gratuitous ARP: after taking over a virtual address, the new master tells the segment that
//! the address now lives at its MAC, so clients and routers update their neighbour entries
//! at once instead of when they expire. One ARP request per address, sender and target both
//! the virtual address, from the interface's MAC to the broadcast MAC, as keepalived sends.

use std::io;
use std::net::Ipv4Addr;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use super::link::Interface;

/// The ARP EtherType.
const ETH_P_ARP: u16 = 0x0806;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// An ARP packet for IPv4 over Ethernet.
const ARP_LEN: usize = 28;

/// The ARP request announcing that `address` is at `mac`.
pub fn gratuitous_arp(mac: [u8; 6], address: Ipv4Addr) -> [u8; ARP_LEN] {
    let mut packet = [0u8; ARP_LEN];
    let (header, rest) = packet.split_at_mut(8);
    // Hardware type Ethernet, protocol IPv4, address lengths 6 and 4, operation request.
    header.copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    let (sender_mac, rest) = rest.split_at_mut(6);
    let (sender_ip, rest) = rest.split_at_mut(4);
    let (target_mac, target_ip) = rest.split_at_mut(6);
    sender_mac.copy_from_slice(&mac);
    sender_ip.copy_from_slice(&address.octets());
    target_mac.copy_from_slice(&BROADCAST_MAC);
    target_ip.copy_from_slice(&address.octets());
    packet
}

/// A packet socket that sends ARP on one interface.
pub struct Announcer {
    socket: Socket,
    broadcast: SockAddr,
    mac: [u8; 6],
}

impl Announcer {
    pub fn open(interface: &Interface) -> io::Result<Announcer> {
        let protocol = Protocol::from(i32::from(ETH_P_ARP.to_be()));
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(protocol))?;
        Ok(Announcer {
            socket,
            broadcast: link_address(interface.index, BROADCAST_MAC)?,
            mac: interface.mac,
        })
    }

    /// Sends one gratuitous ARP for each address.
    pub fn announce(&self, addresses: &[Ipv4Addr]) -> io::Result<()> {
        for address in addresses {
            let packet = gratuitous_arp(self.mac, *address);
            self.socket.send_to(&packet, &self.broadcast)?;
        }
        Ok(())
    }
}

/// The link-layer address `mac` on interface `index`, for ARP.
fn link_address(index: u32, mac: [u8; 6]) -> io::Result<SockAddr> {
    let index = i32::try_from(index).map_err(io::Error::other)?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_ll` is one of this platform's socket address types, and it fits in the
    // storage (`view_as` checks the size).
    let link = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    link.sll_family = libc::AF_PACKET as libc::sa_family_t;
    link.sll_protocol = ETH_P_ARP.to_be();
    link.sll_ifindex = index;
    link.sll_halen = 6;
    for (slot, byte) in link.sll_addr.iter_mut().zip(mac) {
        *slot = byte;
    }
    let length = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds a fully initialised `sockaddr_ll` of `length` bytes.
    Ok(unsafe { SockAddr::new(storage, length) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gratuitous_arp_names_the_address_as_sender_and_target() {
        let mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
        let packet = gratuitous_arp(mac, Ipv4Addr::new(10, 213, 8, 3));
        assert_eq!(
            packet,
            [
                0, 1, 8, 0, 6, 4, 0, 1, // Ethernet, IPv4, request
                2, 0x42, 0xac, 0x11, 0, 2, 10, 213, 8, 3, // sender: our MAC, the VIP
                255, 255, 255, 255, 255, 255, 10, 213, 8, 3, // target: broadcast, the VIP
            ]
        );
    }
}
