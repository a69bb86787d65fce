//! A PyTorch `state_dict()` read through `burn-store`: every tensor as f32 (bool
//! masks as 0/1, integer buffers exactly: they are small indices), with the
//! safetensors header's string metadata.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use burn_store::{ModuleStore, PytorchStore, SafetensorsStore};

use crate::error::{FloeError, Result};

/// One tensor: its shape and values.
#[derive(Debug, Clone)]
pub struct Entry {
    /// PyTorch's shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// The tensors of a state dict, by name, and the file's metadata.
#[derive(Debug, Clone)]
pub struct StateDict {
    /// The file read.
    pub path: PathBuf,
    /// Tensors by their PyTorch names.
    pub tensors: BTreeMap<String, Entry>,
    /// safetensors metadata (empty for a pickle).
    pub metadata: BTreeMap<String, String>,
}

impl StateDict {
    /// Read a `.safetensors` file, or a `torch.save`d state dict (`.pt`, `.pth`,
    /// `.bin`; a checkpoint dict holding it under `state_dict` works too).
    pub fn read(path: &Path) -> Result<StateDict> {
        if !path.exists() {
            return Err(FloeError::not_found(path));
        }
        let err = |msg: String| FloeError::Import { path: path.to_owned(), msg };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let (raw, metadata) = if ext == "safetensors" {
            let mut store = SafetensorsStore::from_file(path).map_indices_contiguous(false);
            let t = store.get_all_tensors().map_err(|e| err(format!("not a readable safetensors file: {e}")))?.clone();
            (t, read_safetensors_metadata(path)?)
        } else {
            let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
            let t = match store.get_all_tensors() {
                Ok(t) if !t.is_empty() => t.clone(),
                first => {
                    let mut nested =
                        PytorchStore::from_file(path).map_indices_contiguous(false).with_top_level_key("state_dict");
                    match nested.get_all_tensors() {
                        Ok(t) if !t.is_empty() => t.clone(),
                        _ => {
                            let why = first.err().map_or("no tensors".to_owned(), |e| e.to_string());
                            return Err(err(format!("not a readable PyTorch state dict: {why}")));
                        }
                    }
                }
            };
            (t, BTreeMap::new())
        };
        let mut tensors = BTreeMap::new();
        for (name, t) in &raw {
            let data = burn_store::bridge::to_data(t).map_err(|e| err(format!("{name}: {e}")))?;
            let shape = data.shape().to_vec();
            let values = values(data).map_err(|e| err(format!("{name}: {e}")))?;
            tensors.insert(name.clone(), Entry { shape, values });
        }
        Ok(StateDict { path: path.to_owned(), tensors, metadata })
    }

    /// An import error about this file.
    pub fn err(&self, msg: String) -> FloeError {
        FloeError::Import { path: self.path.clone(), msg }
    }

    /// The tensor `name`, which must exist.
    pub fn get(&self, name: &str) -> Result<&Entry> {
        self.tensors.get(name).ok_or_else(|| self.err(format!("no tensor {name:?} in the state dict")))
    }

    /// The tensor `name` with exactly this shape.
    pub fn shaped(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let e = self.get(name)?;
        if e.shape != shape {
            return Err(self.err(format!("{name}: shape {:?}, expected {shape:?}", e.shape)));
        }
        Ok(&e.values)
    }

    /// Every tensor name starting with `prefix`.
    pub fn names_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.tensors.keys().filter(move |k| k.starts_with(prefix)).map(String::as_str)
    }

    /// A metadata value parsed as f32.
    pub fn meta_f32(&self, key: &str) -> Result<Option<f32>> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.err(format!("metadata {key} = {v:?} is not a finite number"))),
        }
    }
}

/// A tensor's values as f32: floats rounded to f32 (a state dict saved in f64
/// is read at the precision floe runs in), integers and booleans exactly.
fn values(data: TensorData) -> std::result::Result<Vec<f32>, String> {
    match data.dtype() {
        DType::Bool(_) => {
            data.try_to_vec::<bool>().map(|v| v.into_iter().map(f32::from).collect()).map_err(|e| format!("{e:?}"))
        }
        DType::F32 => data.try_to_vec::<f32>().map_err(|e| format!("{e:?}")),
        DType::QFloat(_) => Err("quantized tensors are not read; save the float model".to_owned()),
        _ => data.try_cast_as::<f32>().and_then(|d| d.try_to_vec::<f32>()).map_err(|e| format!("{e:?}")),
    }
}

/// The `__metadata__` of a safetensors header (8-byte little-endian length,
/// then JSON): burn-store reads the tensors, not the strings beside them.
fn read_safetensors_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    use std::io::Read;
    let err = |msg: String| FloeError::Import { path: path.to_owned(), msg };
    let mut f = std::fs::File::open(path).map_err(|e| FloeError::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| FloeError::io(path, e))?;
    let len = u64::from_le_bytes(len);
    let file_len = f.metadata().map_err(|e| FloeError::io(path, e))?.len();
    if len > file_len.saturating_sub(8) || len > 100_000_000 {
        return Err(err(format!("safetensors header of {len} bytes in a {file_len}-byte file")));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).map_err(|e| FloeError::io(path, e))?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| err(format!("safetensors header is not JSON: {e}")))?;
    let mut out = BTreeMap::new();
    if let Some(m) = json.get("__metadata__").and_then(|m| m.as_object()) {
        for (k, v) in m {
            if let Some(s) = v.as_str() {
                out.insert(k.clone(), s.to_owned());
            }
        }
    }
    Ok(out)
}
