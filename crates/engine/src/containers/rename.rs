//! `rename`: a new name, checked and taken in one transaction.

use super::{names, no_such_container, CONTAINERS};
use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    /// Renames container `name` to `new_name`; returns the old name (without `/`).
    pub fn rename_container(&self, name: &str, new_name: &str) -> Result<String> {
        if name.is_empty() || new_name.is_empty() {
            return Err(Error::InvalidParameter(
                "Neither old nor new names may be empty".into(),
            ));
        }
        let wanted = names::validate(new_name)?;
        let c = self.lookup_container(name)?;
        if c.name == wanted {
            return Err(Error::InvalidParameter(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        self.db.transaction(|tx| {
            let all = tx.list(CONTAINERS)?;
            if let Some((other, _)) = all.iter().find(|(_, o)| o.name == wanted) {
                return Err(Error::Conflict(format!(
                    "Error when allocating new name: Conflict. The container name \"{wanted}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            let mut r = tx
                .get(CONTAINERS, &c.id)?
                .ok_or_else(|| no_such_container(name))?;
            let old = std::mem::replace(&mut r.name, wanted.clone());
            tx.put(CONTAINERS, &c.id, &r)?;
            self.emit_container(&r, "rename", &[("oldName", old.clone())]);
            Ok(old.trim_start_matches('/').to_string())
        })
    }
}
