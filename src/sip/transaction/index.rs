//! The endpoint's indexes from a matching key (RFC 3261 §17.1.3 client,
//! §17.2.3 server) to the transaction it names.
//!
//! Each index holds only transaction ids (8 bytes an entry); the key itself
//! lives in the transaction ([`Tx::key`]) and is compared there. A map of
//! key → id held a second copy of every key (a server key is 176 bytes), so
//! with 2000 calls/s and 32 s of lingering the two tables grew to ~35 MB of
//! freshly faulted memory, ~900 bytes a call.
//!
//! Invariant: every id in an index is in the endpoint's transaction table.
//! [`KeyIndex::insert`] is called after the transaction went into the
//! table, [`KeyIndex::remove`] when it leaves it.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::key::{ClientKey, ServerKey};
use super::tx::{Key, Tx};
use super::{TxId, TxMap};

/// The client and server indexes of one endpoint.
#[derive(Debug, Default)]
pub(super) struct KeyIndex {
    /// Seeded per index: keys are peer-chosen bytes (branches, tags).
    hasher: foldhash::fast::RandomState,
    clients: HashTable<TxId>,
    servers: HashTable<TxId>,
}

/// The transaction table the ids point into.
type Txs = TxMap<Box<Tx>>;

fn client_key_of<'a>(txs: &'a Txs, id: &TxId) -> Option<&'a ClientKey> {
    match &txs.get(id)?.key {
        Key::Client(k) => k.as_ref(),
        Key::Server(_) => None,
    }
}

fn server_key_of<'a>(txs: &'a Txs, id: &TxId) -> Option<&'a ServerKey> {
    match &txs.get(id)?.key {
        Key::Server(k) => Some(k),
        Key::Client(_) => None,
    }
}

impl KeyIndex {
    fn hash<K: Hash>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The client transaction a response with `key` matches (§17.1.3).
    pub fn client(&self, txs: &Txs, key: &ClientKey) -> Option<TxId> {
        let eq = |id: &TxId| client_key_of(txs, id) == Some(key);
        self.clients.find(self.hash(key), eq).copied()
    }

    /// The server transaction a request with `key` matches (§17.2.3).
    pub fn server(&self, txs: &Txs, key: &ServerKey) -> Option<TxId> {
        let eq = |id: &TxId| server_key_of(txs, id) == Some(key);
        self.servers.find(self.hash(key), eq).copied()
    }

    /// Index transaction `id`, already in `txs`, under its key. A newer
    /// transaction with an equal key takes the entry over (the older one
    /// stays in the table, unreachable by matching, until its timers end it).
    pub fn insert(&mut self, txs: &Txs, id: TxId) {
        let Some(tx) = txs.get(&id) else { return };
        match &tx.key {
            Key::Client(None) => {}
            Key::Client(Some(key)) => {
                let hash = self.hash(key);
                let hasher = &self.hasher;
                let rehash = |e: &TxId| client_key_of(txs, e).map_or(0, |k| hasher.hash_one(k));
                let eq = |e: &TxId| client_key_of(txs, e) == Some(key);
                set(self.clients.entry(hash, eq, rehash), id);
            }
            Key::Server(key) => {
                let hash = self.hash(key);
                let hasher = &self.hasher;
                let rehash = |e: &TxId| server_key_of(txs, e).map_or(0, |k| hasher.hash_one(k));
                let eq = |e: &TxId| server_key_of(txs, e) == Some(key);
                set(self.servers.entry(hash, eq, rehash), id);
            }
        }
    }

    /// Drop the entry of transaction `id` (indexed under `key`), if the
    /// entry still names it.
    pub fn remove(&mut self, id: TxId, key: &Key) {
        let (table, hash) = match key {
            Key::Client(None) => return,
            Key::Client(Some(k)) => (&mut self.clients, self.hasher.hash_one(k)),
            Key::Server(k) => (&mut self.servers, self.hasher.hash_one(k)),
        };
        if let Ok(entry) = table.find_entry(hash, |e| *e == id) {
            entry.remove();
        }
    }

    /// Entries in both indexes (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }
}

fn set(entry: Entry<'_, TxId>, id: TxId) {
    match entry {
        Entry::Occupied(mut e) => *e.get_mut() = id,
        Entry::Vacant(e) => {
            e.insert(id);
        }
    }
}
