//! The one owned, loaded model: the file's bytes, kept aligned, and the
//! runtime's validated [`Model`] over them — validated once.

use std::path::Path;

use floe_runtime::Model;

use crate::error::{FloeError, Result};

/// A byte buffer whose start is 16-byte aligned, as the format's tensors are
/// (a `Vec<u8>` gives no alignment promise; [`Model::load`] needs 4).
#[derive(Debug, Clone)]
pub struct AlignedBytes {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBytes {
    /// Copy `bytes` into an aligned buffer.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes { words, len: bytes.len() }
    }
}

impl std::ops::Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }
}

impl std::ops::DerefMut for AlignedBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u128, u8>(&mut self.words)[..self.len]
    }
}

self_cell::self_cell!(
    /// Aligned bytes and the model borrowing them (safe self-reference: the bytes
    /// live on the heap and never move or change while the model exists).
    struct Cell {
        owner: AlignedBytes,
        #[covariant]
        dependent: Model,
    }
    impl {Debug}
);

/// A model file in memory, validated by the runtime exactly once.
///
/// [`LoadedModel::model`] hands out the runtime's [`Model`] for as long as the
/// `LoadedModel` is borrowed. (It is not `Deref<Target = Model>`: a `Model`
/// borrows the bytes, and a `Deref` target cannot name that borrow's lifetime —
/// `Model<'static>` would let a copy outlive the bytes.)
#[derive(Debug)]
pub struct LoadedModel {
    cell: Cell,
}

/// Rows [`LoadedModel::relayout`] compares.
pub const RELAYOUT_CHECK_ROWS: usize = 256;

impl LoadedModel {
    /// Validate `bytes` (copied into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<LoadedModel> {
        let cell = Cell::try_new(AlignedBytes::new(bytes), |b| Model::load(b))?;
        Ok(LoadedModel { cell })
    }

    /// Read and validate the model file at `path`.
    pub fn read(path: &Path) -> Result<LoadedModel> {
        let bytes = std::fs::read(path).map_err(|e| FloeError::io(path, e))?;
        let cell = Cell::try_new(AlignedBytes::new(&bytes), |b| Model::load(b))
            .map_err(|source| FloeError::InvalidModelFile { path: path.to_path_buf(), source })?;
        Ok(LoadedModel { cell })
    }

    /// The runtime's view of the file.
    pub fn model(&self) -> &Model<'_> {
        self.cell.borrow_dependent()
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.cell.borrow_owner()
    }

    /// The same model with its int8 conditioners in the row-pair layout
    /// (`pairs`; docs/FORMAT.md: what a Cortex-M4/M7-class kernel reads
    /// fastest) or row-major (`!pairs`, what every runtime build reads), and how
    /// many layers were rewritten. Checked before it is returned: the rewritten
    /// file loads, and its `log p` of rows drawn from the model equal the
    /// original's bit for bit.
    pub fn relayout(&self, pairs: bool) -> Result<(LoadedModel, usize)> {
        let mut bytes = self.bytes().to_vec();
        let mut scratch = vec![0i8; bytes.len()];
        let n = floe_runtime::format::row_pairs::relayout_file(&mut bytes, &mut scratch, pairs)?;
        Ok((self.same_model(&bytes)?, n))
    }

    /// The same model with its int8 conditioners' requantization words stored
    /// (docs/FORMAT.md; every conditioner whose hidden units all have one), and
    /// how many layers were rewritten; checked like [`LoadedModel::relayout`].
    pub fn store_requant_words(&self) -> Result<(LoadedModel, usize)> {
        let (bytes, n) = super::store_requant_words(self.bytes())?;
        Ok((self.same_model(&bytes)?, n))
    }

    /// `bytes` loaded, checked to give the `log p` of this model, bit for bit,
    /// on [`RELAYOUT_CHECK_ROWS`] rows drawn from it.
    fn same_model(&self, bytes: &[u8]) -> Result<LoadedModel> {
        let new = LoadedModel::from_bytes(bytes)?;
        let (old_m, new_m) = (self.model(), new.model());
        let context = vec![0.0f32; old_m.context_dim()];
        let rows = super::runtime::samples(old_m, RELAYOUT_CHECK_ROWS, 0, &context)?;
        let rows = crate::data::Rows { c: context.repeat(rows.n()), context_dim: context.len(), ..rows };
        let (a, b) = (super::runtime::log_probs(old_m, &rows)?, super::runtime::log_probs(new_m, &rows)?);
        if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.to_bits() != y.to_bits()) {
            return Err(FloeError::Internal("the rewritten file's log p differs from the original's"));
        }
        Ok(new)
    }

    /// Write the file to `path` (creating its folder), then read it back from
    /// disk and check it is what was written: a file is never reported written
    /// unless the runtime loads the bytes on disk.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| FloeError::io(parent, e))?;
        }
        std::fs::write(path, self.bytes()).map_err(|e| FloeError::io(path, e))?;
        let back = LoadedModel::read(path)?;
        if back.bytes() != self.bytes() {
            return Err(FloeError::io(path, std::io::Error::other("the file on disk differs from what was written")));
        }
        Ok(())
    }
}
