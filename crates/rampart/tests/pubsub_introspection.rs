//! PUBSUB's introspection through rampart, against real redis-server shards. Subscribers connect
//! to the redis-servers directly (so these tests do not depend on the proxy's own subscription
//! code), each on channels of the shard the channel's name hashes to, as the proxy places them;
//! then, through rampart: CHANNELS (with and without a pattern) is exactly the union of the
//! shards' channels, NUMSUB gives each channel's count from its own shard in the request's
//! order (0 for a channel nobody listens to), NUMPAT the largest of the shards' counts, and
//! SHARDCHANNELS and SHARDNUMSUB the same for SSUBSCRIBE. Replies match redis-server's own, in
//! RESP2 and RESP3, and so do the error texts; a shard that is down or ejected makes them fail
//! naming it, except NUMSUB of channels that live elsewhere (it follows the ring, as PUBLISH).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::resp::{Client, Reply};
use support::shards::Cluster;
use support::wait_until;

/// A connection to `port` that subscribes to `names` with `command` (SUBSCRIBE, PSUBSCRIBE,
/// SSUBSCRIBE) and has read every confirmation, so the server counts it when this returns.
fn subscriber(port: u16, command: &str, names: &[&str]) -> Client {
    let mut client = Client::open(port);
    let mut request: Vec<&[u8]> = vec![command.as_bytes()];
    request.extend(names.iter().map(|name| name.as_bytes()));
    client.send(&request);
    for name in names {
        match client.read_reply().expect("a subscription confirmation") {
            Reply::Array(Some(items)) | Reply::Push(items) => {
                assert_eq!(items[1], Reply::Bulk(Some(name.as_bytes().to_vec())));
            }
            other => panic!("{command} {name} gave {other:?}"),
        }
    }
    client
}

/// The bulk strings of an array reply, as text.
fn names(reply: Reply) -> Vec<String> {
    let Reply::Array(Some(items)) = reply else {
        panic!("not an array: {reply:?}");
    };
    items
        .into_iter()
        .map(|item| {
            item.text()
                .unwrap_or_else(|| panic!("not a name: {item:?}"))
        })
        .collect()
}

fn set(names: &[String]) -> HashSet<String> {
    names.iter().cloned().collect()
}

/// `[ch1, n1, ch2, n2...]`, as NUMSUB answers.
fn counts(pairs: &[(&str, i64)]) -> Reply {
    Reply::Array(Some(
        pairs
            .iter()
            .flat_map(|&(channel, count)| {
                [
                    Reply::Bulk(Some(channel.as_bytes().to_vec())),
                    Reply::Integer(count),
                ]
            })
            .collect(),
    ))
}

fn resp3(port: u16) -> Client {
    let mut client = Client::open(port);
    assert!(matches!(client.call_str(&["HELLO", "3"]), Reply::Map(_)));
    client
}

#[test]
fn introspection_sees_every_shards_subscribers() {
    let cluster = Cluster::start(3, "", &[]);
    // Two news and one chat channel on each shard, one shard channel on each shard.
    let news = cluster.keys_by_shard("news:", 2);
    let chat = cluster.key_per_shard("chat:");
    let shard_channels = cluster.key_per_shard("orders:");
    let mut subscribers = Vec::new();
    for shard in 0..3 {
        let port = cluster.redis[shard].port;
        let mine = [
            news[shard][0].as_str(),
            news[shard][1].as_str(),
            chat[shard].as_str(),
        ];
        subscribers.push(subscriber(port, "SUBSCRIBE", &mine));
        // A second subscriber to shard N's first news channel, for a count of 2.
        subscribers.push(subscriber(port, "SUBSCRIBE", &[mine[0]]));
        subscribers.push(subscriber(port, "SSUBSCRIBE", &[&shard_channels[shard]]));
    }
    // Patterns: two on s0, one on s1, none on s2.
    subscribers.push(subscriber(
        cluster.redis[0].port,
        "PSUBSCRIBE",
        &["news:*", "chat:*"],
    ));
    subscribers.push(subscriber(cluster.redis[1].port, "PSUBSCRIBE", &["news:*"]));

    let mut conn = cluster.conn();
    let all_news: Vec<String> = news.iter().flatten().cloned().collect();
    let every: Vec<String> = all_news.iter().chain(&chat).cloned().collect();
    let channels = names(conn.call_str(&["PUBSUB", "CHANNELS"]));
    assert_eq!(
        channels.len(),
        every.len(),
        "no channel twice: {channels:?}"
    );
    assert_eq!(set(&channels), set(&every));
    let matched = names(conn.call_str(&["pubsub", "channels", "news:*"]));
    assert_eq!(matched.len(), all_news.len());
    assert_eq!(set(&matched), set(&all_news));
    assert_eq!(
        conn.call_str(&["PUBSUB", "CHANNELS", "nothing:*"]),
        Reply::Array(Some(Vec::new()))
    );

    // In an order that goes back and forth between the shards, with a channel nobody
    // listens to and one asked twice.
    let asked = [
        (news[2][0].as_str(), 2),
        (chat[0].as_str(), 1),
        ("nobody", 0),
        (news[1][1].as_str(), 1),
        (news[0][0].as_str(), 2),
        (chat[2].as_str(), 1),
        (news[2][0].as_str(), 2),
        (shard_channels[1].as_str(), 0),
    ];
    let mut request = vec!["PUBSUB", "NUMSUB"];
    request.extend(asked.iter().map(|(channel, _)| *channel));
    assert_eq!(conn.call_str(&request), counts(&asked));
    assert_eq!(
        conn.call_str(&["PUBSUB", "NUMSUB"]),
        Reply::Array(Some(Vec::new()))
    );
    assert_eq!(conn.call_str(&["PUBSUB", "NUMPAT"]), Reply::Integer(2));

    let shard_listed = names(conn.call_str(&["PUBSUB", "SHARDCHANNELS"]));
    assert_eq!(shard_listed.len(), 3);
    assert_eq!(set(&shard_listed), set(&shard_channels));
    assert_eq!(
        names(conn.call_str(&["PUBSUB", "SHARDCHANNELS", &shard_channels[2]])),
        [shard_channels[2].clone()]
    );
    let shard_asked = [
        (shard_channels[2].as_str(), 1),
        ("nobody", 0),
        (shard_channels[0].as_str(), 1),
        (news[0][0].as_str(), 0),
        (shard_channels[1].as_str(), 1),
    ];
    let mut request = vec!["PUBSUB", "SHARDNUMSUB"];
    request.extend(shard_asked.iter().map(|(channel, _)| *channel));
    assert_eq!(conn.call_str(&request), counts(&shard_asked));

    // Compared with what redis-server answers for channels of one shard, in either protocol.
    let on_s0 = [news[0][0].as_str(), chat[0].as_str(), "nobody-0"];
    let mut direct2 = cluster.redis[0].client();
    let mut direct3 = resp3(cluster.redis[0].port);
    let mut proxy3 = resp3(cluster.port);
    for request in [
        &["PUBSUB", "NUMSUB", on_s0[0], on_s0[1], on_s0[2]][..],
        &["PUBSUB", "NUMSUB"],
        &["PUBSUB", "SHARDNUMSUB", &shard_channels[0], "nobody-0"],
        &["PUBSUB", "CHANNELS", on_s0[0]],
        &["PUBSUB", "SHARDCHANNELS", &shard_channels[0]],
        &["PUBSUB", "CHANNELS", "nothing:*"],
        &["PUBSUB", "NUMPAT"],
        &["PUBSUB", "HELP"],
    ] {
        let wanted = direct3.call_str(request);
        assert_eq!(proxy3.call_str(request), wanted, "RESP3 {request:?}");
        let wanted = direct2.call_str(request);
        assert_eq!(conn.call_str(request), wanted, "RESP2 {request:?}");
    }
    drop(subscribers);
}

#[test]
fn errors_are_redis_servers_and_a_shard_down_is_named() {
    let mut cluster = Cluster::start(2, "", &[]);
    let mut proxy = cluster.conn();
    let mut direct = cluster.redis[0].client();
    for bad in [
        &["PUBSUB"][..],
        &["PUBSUB", "NOPE"],
        &["pubsub", "Channelz", "x"],
        &["PUBSUB", "CHANNELS", "a", "b"],
        &["pubsub", "ShardChannels", "a", "b"],
        &["PUBSUB", "NUMPAT", "x"],
        &["PUBSUB", "HELP", "x"],
    ] {
        let expected = direct.call_str(bad);
        assert!(matches!(expected, Reply::Error(_)), "{bad:?}: {expected:?}");
        assert_eq!(proxy.call_str(bad), expected, "{bad:?}");
    }

    let channels = cluster.key_per_shard("live:");
    let _listening = [
        subscriber(cluster.redis[0].port, "SUBSCRIBE", &[&channels[0]]),
        subscriber(cluster.redis[1].port, "SUBSCRIBE", &[&channels[1]]),
    ];
    assert_eq!(
        proxy.call_str(&["PUBSUB", "NUMSUB", &channels[1], &channels[0]]),
        counts(&[(&channels[1], 1), (&channels[0], 1)])
    );
    cluster.redis[1].kill();
    wait_until(
        "PUBSUB CHANNELS to fail naming s1",
        Duration::from_secs(10),
        || match proxy.call_str(&["PUBSUB", "CHANNELS"]) {
            Reply::Error(text) => {
                assert!(text.contains("shard 's1'"), "-{text}");
                true
            }
            _ => false,
        },
    );
    for command in [
        &["PUBSUB", "NUMPAT"][..],
        &["PUBSUB", "SHARDCHANNELS", "*"],
        &["PUBSUB", "NUMSUB", &channels[0], &channels[1]],
        &["PUBSUB", "SHARDNUMSUB", &channels[1]],
    ] {
        match proxy.call_str(command) {
            Reply::Error(text) => assert!(text.contains("shard 's1'"), "{command:?}: -{text}"),
            other => panic!("{command:?} with s1 down gave {other:?}"),
        }
    }
    // A channel's count needs only its own shard, as PUBLISH does.
    assert_eq!(
        proxy.call_str(&["PUBSUB", "NUMSUB", &channels[0]]),
        counts(&[(&channels[0], 1)])
    );
}

#[test]
fn an_ejected_shard_is_named_and_numsub_follows_the_ring() {
    let mut cluster = Cluster::start(
        2,
        "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n",
        &[],
    );
    let channels = cluster.key_per_shard("moved:");
    let _listening = subscriber(cluster.redis[0].port, "SUBSCRIBE", &[&channels[0]]);
    let mut proxy = cluster.conn();
    cluster.redis[1].kill();
    wait_until(
        "s1 to be ejected",
        Duration::from_secs(10),
        || matches!(proxy.call_str(&["PUBSUB", "CHANNELS"]), Reply::Error(text) if text.contains("ejected")),
    );
    for command in [
        &["PUBSUB", "CHANNELS"][..],
        &["PUBSUB", "SHARDCHANNELS"],
        &["PUBSUB", "NUMPAT"],
    ] {
        match proxy.call_str(command) {
            Reply::Error(text) => assert!(
                text.contains("shard 's1' is ejected"),
                "{command:?}: -{text}"
            ),
            other => panic!("{command:?} with s1 ejected gave {other:?}"),
        }
    }
    // s1's channel now lives on s0, where PUBLISH would deliver it: nobody listens there.
    assert_eq!(
        proxy.call_str(&["PUBSUB", "NUMSUB", &channels[1], &channels[0]]),
        counts(&[(&channels[1], 0), (&channels[0], 1)])
    );
}
