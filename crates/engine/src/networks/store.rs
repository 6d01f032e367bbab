//! Network records in the engine's `kiln.db`, one redb table:
//!
//! ```text
//! networks   "<64 hex id>"   → NetworkRecord (JSON)
//! ```
//!
//! A change that touches several networks (a container joining two) is one
//! write transaction.

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::{NetworkError, NetworkRecord};

const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");

fn fail<E: std::error::Error + Send + Sync + 'static>(
    action: &'static str,
) -> impl FnOnce(E) -> NetworkError {
    move |source| NetworkError::Database { action, source: Box::new(source) }
}

#[derive(Debug, Clone)]
pub(super) struct NetworkStore {
    db: Arc<Database>,
}

impl NetworkStore {
    pub(super) fn open(db: Arc<Database>) -> Result<NetworkStore, NetworkError> {
        let txn = db.begin_write().map_err(fail("write"))?;
        txn.open_table(NETWORKS).map_err(fail("create tables in"))?;
        txn.commit().map_err(fail("commit to"))?;
        Ok(NetworkStore { db })
    }

    /// Every record; damaged ones are skipped with a warning.
    pub(super) fn load_all(&self) -> Result<Vec<NetworkRecord>, NetworkError> {
        let txn = self.db.begin_read().map_err(fail("read"))?;
        let table = txn.open_table(NETWORKS).map_err(fail("read"))?;
        let mut records = Vec::new();
        for row in table.iter().map_err(fail("read"))? {
            let (key, value) = row.map_err(fail("read"))?;
            match serde_json::from_slice::<NetworkRecord>(value.value()) {
                Ok(record) => records.push(record),
                Err(err) => {
                    tracing::warn!(network = key.value(), error = %err, "skipping a damaged network record")
                }
            }
        }
        Ok(records)
    }

    /// Writes `records` in one transaction; nothing when empty.
    pub(super) fn put_all(&self, records: &[&NetworkRecord]) -> Result<(), NetworkError> {
        if records.is_empty() {
            return Ok(());
        }
        let encoded = records
            .iter()
            .map(|r| serde_json::to_vec(r).map(|json| (r.id.as_str(), json)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail("encode a record for"))?;
        let txn = self.db.begin_write().map_err(fail("write"))?;
        {
            let mut table = txn.open_table(NETWORKS).map_err(fail("write"))?;
            for (id, json) in &encoded {
                table.insert(*id, json.as_slice()).map_err(fail("write"))?;
            }
        }
        txn.commit().map_err(fail("commit to"))
    }

    pub(super) fn delete(&self, id: &str) -> Result<(), NetworkError> {
        let txn = self.db.begin_write().map_err(fail("write"))?;
        {
            let mut table = txn.open_table(NETWORKS).map_err(fail("write"))?;
            table.remove(id).map_err(fail("write"))?;
        }
        txn.commit().map_err(fail("commit to"))
    }
}
