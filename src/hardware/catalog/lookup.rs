//! Queries on a built catalog: chips, systems, and clusters built from them.

use super::super::{Chip, Cluster, System};
use super::builtin::Wanted;
use super::Catalog;
use crate::error::{Error, Result};

impl Catalog {
    /// Resolve and check the whole catalog now. The built-in catalog is otherwise resolved a
    /// piece at a time, on first use, and a problem in its files (which the test suite rules
    /// out) is reported by the lookup that meets it; [`Catalog::chips`] and
    /// [`Catalog::systems`] cannot report one, so call this before listing.
    ///
    /// # Errors
    /// The problems of the first file at fault, as when a file is loaded.
    pub fn check(&self) -> Result<()> {
        self.whole().map(|_| ())
    }

    /// All chips, in catalog order (the built-in catalog is resolved as a whole on first use;
    /// were that to fail, which the test suite rules out, the list would be empty: see
    /// [`Catalog::check`]).
    #[must_use]
    pub fn chips(&self) -> &[Chip] {
        self.whole().map_or(&[], |c| &c.chips)
    }

    /// All systems, in catalog order (see [`Catalog::chips`]).
    #[must_use]
    pub fn systems(&self) -> &[System] {
        self.whole().map_or(&[], |c| &c.systems)
    }

    /// A chip by id or alias (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnknownId`] listing the known ids.
    pub fn chip(&self, id: &str) -> Result<&Chip> {
        let id = id.to_ascii_lowercase();
        self.part_for(&id, Wanted::Chip)?
            .and_then(|c| {
                c.chips
                    .iter()
                    .find(|c| c.id == id || c.aliases.contains(&id))
            })
            .ok_or_else(|| Error::unknown("chip", &id, self.ids(Wanted::Chip)))
    }

    /// A system by id.
    ///
    /// # Errors
    /// [`Error::UnknownId`] listing the known ids.
    pub fn system(&self, id: &str) -> Result<&System> {
        let id = id.to_ascii_lowercase();
        self.part_for(&id, Wanted::System)?
            .and_then(|c| c.systems.iter().find(|s| s.id == id))
            .ok_or_else(|| Error::unknown("system", &id, self.ids(Wanted::System)))
    }

    /// Resolve a chip or system id into (chip, system): a chip id picks its default system.
    ///
    /// # Errors
    /// [`Error::UnknownId`] when neither a chip nor a system has that id, or the chip has no system.
    pub fn resolve(&self, id: &str) -> Result<(Chip, System)> {
        if self.lazy.is_some() {
            return match self.part_for(&id.to_ascii_lowercase(), Wanted::Either)? {
                Some(part) => part.resolve(id),
                None => Err(Error::unknown(
                    "chip or system",
                    id,
                    self.ids(Wanted::Either),
                )),
            };
        }
        if let Ok(system) = self.system(id) {
            let chip = self.chip(&system.chip)?;
            return Ok((chip.clone(), system.clone()));
        }
        let chip = self
            .chip(id)
            .map_err(|_| Error::unknown("chip or system", id, self.ids(Wanted::Either)))?;
        let system = match &chip.default_system {
            Some(s) => self.system(s)?,
            None => self
                .systems
                .iter()
                .find(|s| s.chip == chip.id)
                .ok_or_else(|| {
                    Error::input(
                        "hardware",
                        format!("chip `{}` has no system in the catalog", chip.id),
                    )
                })?,
        };
        Ok((chip.clone(), system.clone()))
    }

    /// A cluster of `chips` chips of the chip or system `id`.
    ///
    /// # Errors
    /// Unknown ids, zero chips and more than [`crate::hardware::limits::MAX_CLUSTER_CHIPS`].
    pub fn cluster(&self, id: &str, chips: u64) -> Result<Cluster> {
        let (chip, system) = self.resolve(id)?;
        Cluster::new(chip, system, chips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ids_and_aliases_resolve() {
        let c = catalog();
        assert!(c.chip("Trainium3").is_ok());
        let (chip, system) = c.resolve("trn3").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(system.chip, chip.id);
    }

    #[test]
    fn unknown_ids_suggest_the_nearest() {
        let c = catalog();
        match c.chip("trn33") {
            Err(Error::UnknownId { suggestion, .. }) => {
                assert!(suggestion.is_some_and(|s| s.starts_with("trn")));
            }
            other => panic!("{other:?}"),
        }
        let long = "x".repeat(10_000);
        assert!(matches!(c.resolve(&long), Err(Error::UnknownId { .. })));
    }

    #[test]
    fn clusters_refuse_zero_and_absurd_sizes() {
        let c = catalog();
        assert!(c.cluster("trn3", 0).is_err());
        assert!(c.cluster("trn3", u64::MAX).is_err());
        assert!(c.cluster("trn3", 1_000_000_000).is_ok());
    }
}
