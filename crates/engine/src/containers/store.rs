//! Container records in the engine's `kiln.db`, one redb table:
//!
//! ```text
//! containers   "<64 hex id>"   → ContainerRecord (JSON)
//! ```
//!
//! Every change is one write transaction; the engine keeps the same records
//! in memory and writes through.

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::model::ContainerRecord;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

#[derive(Debug, thiserror::Error)]
#[error("cannot {action} the container database")]
pub struct StoreError {
    action: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

fn fail<E: std::error::Error + Send + Sync + 'static>(
    action: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |source| StoreError { action, source: Box::new(source) }
}

#[derive(Debug, Clone)]
pub struct RecordStore {
    db: Arc<Database>,
}

impl RecordStore {
    pub fn open(db: Arc<Database>) -> Result<RecordStore, StoreError> {
        let txn = db.begin_write().map_err(fail("write"))?;
        txn.open_table(CONTAINERS).map_err(fail("create tables in"))?;
        txn.commit().map_err(fail("commit to"))?;
        Ok(RecordStore { db })
    }

    /// Every record; damaged ones are skipped with a warning.
    pub fn load_all(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(fail("read"))?;
        let table = txn.open_table(CONTAINERS).map_err(fail("read"))?;
        let mut records = Vec::new();
        for row in table.iter().map_err(fail("read"))? {
            let (key, value) = row.map_err(fail("read"))?;
            match serde_json::from_slice::<ContainerRecord>(value.value()) {
                Ok(record) => records.push(record),
                Err(err) => {
                    tracing::warn!(container = key.value(), error = %err, "skipping a damaged container record")
                }
            }
        }
        Ok(records)
    }

    pub fn put(&self, record: &ContainerRecord) -> Result<(), StoreError> {
        let json = serde_json::to_vec(record).map_err(fail("encode a record for"))?;
        let txn = self.db.begin_write().map_err(fail("write"))?;
        {
            let mut table = txn.open_table(CONTAINERS).map_err(fail("write"))?;
            table.insert(record.id.as_str(), json.as_slice()).map_err(fail("write"))?;
        }
        txn.commit().map_err(fail("commit to"))
    }

    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(fail("write"))?;
        {
            let mut table = txn.open_table(CONTAINERS).map_err(fail("write"))?;
            table.remove(id).map_err(fail("write"))?;
        }
        txn.commit().map_err(fail("commit to"))
    }
}
