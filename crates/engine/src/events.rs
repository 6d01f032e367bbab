//! The engine's event stream (`docker events`): what happened to which
//! object, kept in a short ring for `--since` and broadcast to followers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::broadcast;

/// Events kept for clients that ask for the past.
const KEPT: usize = 1024;

/// One event, with Docker's vocabulary: `kind` is `container`, `image`,
/// `volume`…; `action` is `create`, `start`, `die`, `health_status: healthy`…
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    /// The object's id (or name, for volumes).
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub time: i64,
}

#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    past: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Events {
        Events { tx: broadcast::channel(KEPT).0, past: Mutex::new(VecDeque::with_capacity(KEPT)) }
    }
}

impl Events {
    /// Record and broadcast an event now.
    pub fn publish(
        &self,
        kind: &'static str,
        action: impl Into<String>,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let event =
            Event { kind, action: action.into(), id: id.to_owned(), attributes, time: now_nanos() };
        let mut past = self.past.lock().unwrap_or_else(|e| e.into_inner());
        if past.len() == KEPT {
            past.pop_front();
        }
        past.push_back(event.clone());
        // Nobody listening is fine.
        let _ = self.tx.send(event);
    }

    /// The kept events, and a receiver of every later one (subscribed under
    /// the same lock, so none falls between the two).
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let past = self.past.lock().unwrap_or_else(|e| e.into_inner());
        (past.iter().cloned().collect(), self.tx.subscribe())
    }
}

fn now_nanos() -> i64 {
    let (secs, nanos) = kiln_types::time::now();
    secs * 1_000_000_000 + i64::from(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_see_the_past_and_what_follows() {
        let events = Events::default();
        events.publish("container", "create", "a", BTreeMap::new());
        let (past, mut rx) = events.subscribe();
        assert_eq!(past.len(), 1);
        events.publish("container", "start", "a", BTreeMap::new());
        let next = rx.try_recv().expect("live event");
        assert_eq!((next.kind, next.action.as_str()), ("container", "start"));
        for i in 0..KEPT + 5 {
            events.publish("volume", "create", &i.to_string(), BTreeMap::new());
        }
        assert_eq!(events.subscribe().0.len(), KEPT);
    }
}
