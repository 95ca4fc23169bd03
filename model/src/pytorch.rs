//! Reader for PyTorch's `torch.save` zip format (`pytorch_model.bin` since PyTorch 1.6).
//!
//! The archive contains `<name>/data.pkl`, a pickle of the state dict, and one file
//! `<name>/data/<key>` per storage. The pickle refers to storages through persistent ids
//! `('storage', <storage type>, key, location, numel)` and builds tensors with
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
//!
//! Only the pickle opcodes and callables that state dicts use are implemented; anything
//! else is rejected, so no code named by the pickle is ever run.

use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read};
use std::path::Path;

use crate::checkpoint::StoredTensor;
use crate::ModelError;

/// Reads every tensor of a `torch.save` state dict, by parameter name.
pub(crate) fn read_state_dict(path: &Path) -> Result<BTreeMap<String, StoredTensor>, ModelError> {
    let bytes = crate::read_file(path)?;
    let invalid = |reason: String| ModelError::InvalidPytorchCheckpoint {
        path: path.to_path_buf(),
        reason,
    };

    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|source| {
        invalid(format!(
            "not a zip archive ({source}); files written by torch.save before PyTorch 1.6 are not supported, re-save with a newer PyTorch or convert to model.safetensors"
        ))
    })?;
    let pickle_name = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|name| name.ends_with("/data.pkl") && name.matches('/').count() == 1)
        .map(|name| name.into_owned())
        .ok_or_else(|| invalid("the archive has no <name>/data.pkl".to_owned()))?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_owned();

    let pickle = read_entry(&mut archive, &pickle_name).map_err(invalid)?;
    let root = Unpickler::new(&pickle).run().map_err(invalid)?;
    let entries = match root {
        Value::Dict(entries) => entries,
        other => {
            return Err(invalid(format!(
                "data.pkl holds {other:?}, not a state dict"
            )))
        }
    };

    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut tensors = BTreeMap::new();
    for (key, value) in entries {
        let (Value::Str(name), Value::Tensor(tensor)) = (key, value) else {
            continue;
        };
        if !storages.contains_key(&tensor.storage_key) {
            let data = read_entry(
                &mut archive,
                &format!("{prefix}data/{}", tensor.storage_key),
            )
            .map_err(invalid)?;
            storages.insert(tensor.storage_key.clone(), data);
        }
        let storage = &storages[&tensor.storage_key];
        let stored = tensor
            .gather(storage)
            .map_err(|reason| invalid(format!("tensor {name}: {reason}")))?;
        tensors.insert(name, stored);
    }
    Ok(tensors)
}

fn read_entry(
    archive: &mut zip::ZipArchive<Cursor<Vec<u8>>>,
    name: &str,
) -> Result<Vec<u8>, String> {
    let mut file = archive
        .by_name(name)
        .map_err(|source| format!("cannot open {name} in the archive: {source}"))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|source| format!("cannot read {name} in the archive: {source}"))?;
    Ok(data)
}

/// A tensor as `_rebuild_tensor_v2` describes it.
#[derive(Debug, Clone, PartialEq)]
struct TensorRef {
    storage_key: String,
    /// Element type from the storage class, e.g. `F32` for `torch.FloatStorage`.
    dtype: String,
    element_size: usize,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

impl TensorRef {
    /// Copies the tensor's elements out of its storage in row-major order.
    fn gather(&self, storage: &[u8]) -> Result<StoredTensor, String> {
        let count: usize = self.shape.iter().product();
        let mut data = Vec::with_capacity(count * self.element_size);
        let mut index = vec![0usize; self.shape.len()];
        for _ in 0..count {
            let element = self.offset
                + index
                    .iter()
                    .zip(&self.stride)
                    .map(|(i, stride)| i * stride)
                    .sum::<usize>();
            let start = element * self.element_size;
            let bytes = storage
                .get(start..start + self.element_size)
                .ok_or_else(|| {
                    format!(
                        "element {element} is outside its storage of {} bytes",
                        storage.len()
                    )
                })?;
            data.extend_from_slice(bytes);

            // Advance the multi-dimensional index, last axis fastest.
            for axis in (0..index.len()).rev() {
                index[axis] += 1;
                if index[axis] < self.shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        Ok(StoredTensor {
            dtype: self.dtype.clone(),
            shape: self.shape.clone(),
            data,
        })
    }
}

/// The pickle values a state dict is made of.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A class or function named by `GLOBAL`, as `module.name`.
    Global(String),
    /// A storage named by a persistent id.
    Storage {
        key: String,
        dtype: String,
        element_size: usize,
    },
    Tensor(TensorRef),
    /// The stack marker pushed by `MARK`.
    Mark,
}

/// Storage classes of `torch.save` and their safetensors dtype names and element sizes.
fn storage_dtype(class: &str) -> Option<(&'static str, usize)> {
    Some(match class {
        "torch.FloatStorage" => ("F32", 4),
        "torch.DoubleStorage" => ("F64", 8),
        "torch.HalfStorage" => ("F16", 2),
        "torch.BFloat16Storage" => ("BF16", 2),
        "torch.LongStorage" => ("I64", 8),
        "torch.IntStorage" => ("I32", 4),
        "torch.ShortStorage" => ("I16", 2),
        "torch.CharStorage" => ("I8", 1),
        "torch.ByteStorage" => ("U8", 1),
        "torch.BoolStorage" => ("BOOL", 1),
        _ => return None,
    })
}

/// A pickle virtual machine for the opcodes of protocols 2 to 4 that `torch.save` emits.
struct Unpickler<'a> {
    input: &'a [u8],
    position: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Unpickler<'a> {
    fn new(input: &'a [u8]) -> Self {
        Unpickler {
            input,
            position: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let bytes = self
            .input
            .get(self.position..self.position + count)
            .ok_or_else(|| format!("data.pkl ends inside an opcode at byte {}", self.position))?;
        self.position += count;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.input[self.position..];
        let end = rest
            .iter()
            .position(|&byte| byte == b'\n')
            .ok_or_else(|| "data.pkl ends inside a GLOBAL opcode".to_owned())?;
        self.position += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    fn text(&mut self, length: usize) -> Result<String, String> {
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| "data.pkl has a string that is not UTF-8".to_owned())
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| format!("data.pkl pops an empty stack at byte {}", self.position))
    }

    /// Pops everything above the topmost `MARK`, and the mark.
    fn pop_to_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self
            .stack
            .iter()
            .rposition(|value| *value == Value::Mark)
            .ok_or_else(|| "data.pkl has no MARK for a collection opcode".to_owned())?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "data.pkl modifies an empty stack".to_owned())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let value = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| "data.pkl memoizes an empty stack".to_owned())?;
        self.memo.insert(key, value);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), String> {
        let value =
            self.memo.get(&key).cloned().ok_or_else(|| {
                format!("data.pkl reads memo entry {key}, which was never stored")
            })?;
        self.stack.push(value);
        Ok(())
    }

    /// Runs the pickle to its `STOP` and returns the resulting object.
    fn run(mut self) -> Result<Value, String> {
        loop {
            let opcode = self.byte()?;
            match opcode {
                0x80 => {
                    self.byte()?; // PROTO: the version does not change the opcodes handled here.
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only.
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let value = self.byte()?;
                    self.stack.push(Value::Int(i64::from(value)));
                }
                b'M' => {
                    let value = self.u16()?;
                    self.stack.push(Value::Int(i64::from(value)));
                }
                b'J' => {
                    let value = self.u32()? as i32;
                    self.stack.push(Value::Int(i64::from(value)));
                }
                0x8a => {
                    let length = usize::from(self.byte()?);
                    let bytes = self.take(length)?;
                    if length > 8 {
                        return Err(format!("data.pkl has a {length}-byte integer"));
                    }
                    // Little-endian two's complement, sign-extended from the last byte.
                    let negative = bytes.last().is_some_and(|byte| byte & 0x80 != 0);
                    let mut buffer = [if negative { 0xff } else { 0 }; 8];
                    buffer[..length].copy_from_slice(bytes);
                    self.stack.push(Value::Int(i64::from_le_bytes(buffer)));
                }
                b'G' => {
                    let bytes = self.take(8)?;
                    let mut buffer = [0u8; 8];
                    buffer.copy_from_slice(bytes);
                    self.stack.push(Value::Float(f64::from_be_bytes(buffer)));
                }
                b'X' => {
                    let length = self.u32()? as usize;
                    let text = self.text(length)?;
                    self.stack.push(Value::Str(text));
                }
                0x8c => {
                    let length = usize::from(self.byte()?);
                    let text = self.text(length)?;
                    self.stack.push(Value::Str(text));
                }
                b'B' => {
                    let length = self.u32()? as usize;
                    let bytes = self.take(length)?.to_vec();
                    self.stack.push(Value::Bytes(bytes));
                }
                b'C' => {
                    let length = usize::from(self.byte()?);
                    let bytes = self.take(length)?.to_vec();
                    self.stack.push(Value::Bytes(bytes));
                }
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_to_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let count = usize::from(opcode - 0x84);
                    if self.stack.len() < count {
                        return Err("data.pkl builds a tuple from too few values".to_owned());
                    }
                    let items = self.stack.split_off(self.stack.len() - count);
                    self.stack.push(Value::Tuple(items));
                }
                b'q' => {
                    let key = u32::from(self.byte()?);
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = self.u32()?;
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u32;
                    self.memo_put(key)?;
                }
                b'h' => {
                    let key = u32::from(self.byte()?);
                    self.memo_get(key)?;
                }
                b'j' => {
                    let key = self.u32()?;
                    self.memo_get(key)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.stack.push(Value::Global(format!("{module}.{name}")))
                        }
                        _ => return Err("data.pkl has a STACK_GLOBAL without strings".to_owned()),
                    }
                }
                b'a' => {
                    let item = self.pop()?;
                    match self.top_mut()? {
                        Value::List(items) => items.push(item),
                        _ => return Err("data.pkl appends to a non-list".to_owned()),
                    }
                }
                b'e' => {
                    let new_items = self.pop_to_mark()?;
                    match self.top_mut()? {
                        Value::List(items) => items.extend(new_items),
                        _ => return Err("data.pkl appends to a non-list".to_owned()),
                    }
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    match self.top_mut()? {
                        Value::Dict(entries) => entries.push((key, value)),
                        _ => return Err("data.pkl sets an item on a non-dict".to_owned()),
                    }
                }
                b'u' => {
                    let items = self.pop_to_mark()?;
                    if items.len() % 2 != 0 {
                        return Err("data.pkl has SETITEMS with an odd number of values".to_owned());
                    }
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut iter = items.into_iter();
                    while let (Some(key), Some(value)) = (iter.next(), iter.next()) {
                        pairs.push((key, value));
                    }
                    match self.top_mut()? {
                        Value::Dict(entries) => entries.extend(pairs),
                        _ => return Err("data.pkl sets items on a non-dict".to_owned()),
                    }
                }
                b'b' => {
                    // BUILD sets attributes, e.g. a state dict's `_metadata`; tensors do
                    // not depend on them, so the state is dropped.
                    self.pop()?;
                }
                b'Q' => {
                    let id = self.pop()?;
                    let storage = persistent_storage(id)?;
                    self.stack.push(storage);
                }
                b'R' => {
                    let arguments = self.pop()?;
                    let callable = self.pop()?;
                    let result = reduce(callable, arguments)?;
                    self.stack.push(result);
                }
                other => {
                    return Err(format!(
                        "data.pkl uses pickle opcode 0x{other:02x} at byte {}, which a state dict does not need",
                        self.position - 1
                    ))
                }
            }
        }
    }
}

/// Resolves a `BINPERSID` id `('storage', storage class, key, location, numel)`.
fn persistent_storage(id: Value) -> Result<Value, String> {
    let Value::Tuple(items) = id else {
        return Err(format!("data.pkl has persistent id {id:?}, not a tuple"));
    };
    match items.as_slice() {
        [Value::Str(kind), Value::Global(class), Value::Str(key), ..] if kind == "storage" => {
            let (dtype, element_size) = storage_dtype(class)
                .ok_or_else(|| format!("storage class {class} is not supported"))?;
            Ok(Value::Storage {
                key: key.clone(),
                dtype: dtype.to_owned(),
                element_size,
            })
        }
        _ => Err(format!(
            "data.pkl has persistent id {items:?}, not a storage"
        )),
    }
}

/// Applies the callables a state dict uses; every other callable is rejected.
fn reduce(callable: Value, arguments: Value) -> Result<Value, String> {
    let Value::Global(name) = callable else {
        return Err(format!(
            "data.pkl calls {callable:?}, which is not a class or function"
        ));
    };
    let Value::Tuple(arguments) = arguments else {
        return Err(format!(
            "data.pkl calls {name} with {arguments:?}, not a tuple"
        ));
    };

    match name.as_str() {
        "collections.OrderedDict" if arguments.is_empty() => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" => rebuild_tensor(&arguments),
        // A parameter pickles as its tensor plus requires_grad and hooks.
        "torch._utils._rebuild_parameter" => match arguments.into_iter().next() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor),
            _ => Err("_rebuild_parameter without a tensor".to_owned()),
        },
        _ => Err(format!(
            "data.pkl calls {name}, which a state dict of tensors does not need; only plain state dicts are supported"
        )),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks, ...)`.
fn rebuild_tensor(arguments: &[Value]) -> Result<Value, String> {
    let [Value::Storage {
        key,
        dtype,
        element_size,
    }, Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), ..] = arguments
    else {
        return Err(format!(
            "_rebuild_tensor_v2 has unexpected arguments {arguments:?}"
        ));
    };
    let integers = |values: &[Value]| -> Result<Vec<usize>, String> {
        values
            .iter()
            .map(|value| match value {
                Value::Int(number) if *number >= 0 => Ok(*number as usize),
                other => Err(format!(
                    "tensor dimension {other:?} is not a non-negative integer"
                )),
            })
            .collect()
    };
    let shape = integers(size)?;
    let stride = integers(stride)?;
    if shape.len() != stride.len() {
        return Err(format!(
            "tensor size {shape:?} and stride {stride:?} differ in length"
        ));
    }
    if *offset < 0 {
        return Err(format!("tensor storage offset {offset} is negative"));
    }
    Ok(Value::Tensor(TensorRef {
        storage_key: key.clone(),
        dtype: dtype.clone(),
        element_size: *element_size,
        offset: *offset as usize,
        shape,
        stride,
    }))
}
