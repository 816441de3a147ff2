//! The raw IP socket that carries one virtual router's adverts (IP protocol 112): bound to its
//! interface, sending with TTL 255 to 224.0.0.18 or to each unicast peer, and receiving whole
//! IPv4 datagrams, so the caller can check the TTL and the source of every advert.

use std::io;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};

use rampart_vrrp::packet::{IPPROTO_VRRP, MULTICAST_V4, VRRP_TTL};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::link::Interface;
use crate::proxy::stream::{OwnsFd, watch_fd};

/// IP precedence "network control", as keepalived marks its adverts.
const TOS_NETWORK_CONTROL: u32 = 0xc0;

pub struct AdvertSocket {
    /// Bound to the advert source, so the kernel sends from exactly that address (the v3
    /// checksum covers it). It never reads: a raw socket bound to an address would receive only
    /// datagrams sent to that address, not the multicast group's.
    sender: Socket,
    receiver: AsyncFd<RawSocket>,
    destinations: Vec<Ipv4Addr>,
}

/// A receiving socket, owned, so the runtime may watch its descriptor.
struct RawSocket(Socket);

// SAFETY: a `Socket` owns its descriptor and closes it only when dropped.
unsafe impl OwnsFd for RawSocket {}

impl AsRawFd for RawSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn raw_vrrp_socket(interface: &Interface) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(IPPROTO_VRRP))),
    )?;
    socket.bind_device(Some(interface.name.as_bytes()))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

impl AdvertSocket {
    /// Opens the sockets on `interface`, sending from `source`. With no `peers` the adverts go
    /// to the VRRP multicast group, which the receiving socket joins; otherwise to each peer.
    pub fn open(interface: &Interface, source: Ipv4Addr, peers: &[Ipv4Addr]) -> io::Result<Self> {
        let sender = raw_vrrp_socket(interface)?;
        sender.set_ttl_v4(u32::from(VRRP_TTL))?;
        sender.set_tos_v4(TOS_NETWORK_CONTROL)?;
        sender.set_multicast_ttl_v4(u32::from(VRRP_TTL))?;
        sender.set_multicast_loop_v4(false)?;
        sender.set_multicast_if_v4(&source)?;
        sender.bind(&SockAddr::from(SocketAddrV4::new(source, 0)))?;
        let receiver = raw_vrrp_socket(interface)?;
        let destinations = if peers.is_empty() {
            receiver.join_multicast_v4_n(
                &MULTICAST_V4,
                &InterfaceIndexOrAddress::Index(interface.index),
            )?;
            vec![MULTICAST_V4]
        } else {
            peers.to_vec()
        };
        Ok(AdvertSocket {
            sender,
            receiver: watch_fd(RawSocket(receiver))?,
            destinations,
        })
    }

    /// Where every advert goes: the multicast group, or each unicast peer.
    pub fn destinations(&self) -> &[Ipv4Addr] {
        &self.destinations
    }

    /// Sends one advert to `destination`.
    pub fn send(&self, advert: &[u8], destination: Ipv4Addr) -> io::Result<()> {
        let address = SockAddr::from(SocketAddrV4::new(destination, 0));
        self.sender.send_to(advert, &address).map(drop)
    }

    /// Waits for the next datagram (IP header included) and returns its length.
    pub async fn receive(&self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.receiver.readable().await?;
            match ready.try_io(|socket| (&socket.get_ref().0).read(buffer)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}
