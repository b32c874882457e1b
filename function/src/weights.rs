//! Compact weights: a model may store its weights as 8-bit integers with per-channel scales or
//! as f16, and have them expanded to f32 at load.
//!
//! Formats (the standard ONNX ones, as `tools/train_small_model.py` writes them):
//! - **int8 + scales**: a weight `W` is replaced by three initialisers — `x` (int8, uint8 or
//!   int32, W's shape), `x_scale` (f32, one value, or one per channel along `axis`) and
//!   optionally `x_zero_point` (x's type, same length as the scale) — and a `DequantizeLinear`
//!   node (attribute `axis`, default 1) whose output is named `W`:
//!   `W = (x − x_zero_point) × x_scale`, as the ONNX operator defines it.
//! - **f16**: an f16 initialiser and a `Cast` node (`to` = FLOAT) whose output is named `W`.
//!
//! tract's own `DequantizeLinear` takes a single scale, so [`expand_compact_weights`] evaluates
//! every such node whose inputs are all initialisers before tract parses the graph: the graph
//! tract sees holds plain f32 weights, and inference runs tract's f32 kernels. Nodes that read
//! run-time values are left to tract.
//!
//! One exception: a table read only by `Gather` along its rows (word and position embeddings)
//! stays 8-bit. Each of its `Gather`s becomes `Gather` of the integers, a `Cast` to f32 and a
//! `Mul` by the gathered rows' scales — the same `(x − 0) × scale` for the rows a call reads,
//! bit for bit, instead of the whole table expanded at load (the default model's 30,522-word
//! table: 47 MB of f32 not written, copied or kept).

use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::{HashMap, HashSet};
use tract_onnx::pb::{tensor_proto::DataType, AttributeProto, ModelProto, NodeProto, TensorProto};

/// Replaces every `DequantizeLinear` node over initialisers, and every `Cast` of an f16
/// initialiser to f32, by an f32 initialiser holding its result, and drops the initialisers only
/// those nodes read. Returns how many weights it expanded.
pub fn expand_compact_weights(model: &mut ModelProto) -> Result<usize> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(0);
    };
    let gathered = dequantize_after_gather(graph)?;
    let expanded = expand_folded(graph)?;
    Ok(gathered + expanded)
}

/// The rows' scales of a table that only `Gather` reads: `Some` when `node` dequantises an
/// 8-bit initialiser `x` with zero points of 0 (or none) and one scale, or one per row.
fn row_scales(
    node: &NodeProto,
    x: &TensorProto,
    inputs: &[&TensorProto],
) -> Result<Option<Vec<f32>>> {
    let eight_bit = [DataType::Int8 as i32, DataType::Uint8 as i32].contains(&x.data_type);
    if !eight_bit || x.raw_data.is_empty() || x.dims.len() < 2 || !(2..=3).contains(&inputs.len()) {
        return Ok(None);
    }
    if attribute(node, "block_size").is_some_and(|a| a.i != 0) {
        return Ok(None);
    }
    if let Some(zp) = inputs.get(2) {
        let zero = Integers::of(zp).context("x_zero_point")?;
        if zp.data_type != x.data_type || (0..zero.len()).any(|i| zero.get(i) != 0) {
            return Ok(None);
        }
    }
    let scales = floats(inputs[1]).context("x_scale")?;
    let rows = usize::try_from(x.dims[0]).map_err(|_| anyhow!("negative dimension"))?;
    let axis = attribute(node, "axis").map(|a| a.i).unwrap_or(1);
    let per_row = scales.len() == rows && (axis == 0 || axis == -(x.dims.len() as i64));
    Ok((scales.len() == 1 || per_row).then_some(scales))
}

/// Leaves 8-bit tables that only `Gather` (axis 0) reads in 8 bits: see the module's notes.
/// Returns how many tables it left so.
fn dequantize_after_gather(graph: &mut tract_onnx::pb::GraphProto) -> Result<usize> {
    let initializers: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    // A subgraph (If, Loop, Scan) may read a table by name from outside: tables keep their
    // names, expanded, wherever one exists.
    if has_subgraphs(graph) {
        return Ok(0);
    }
    let graph_outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    // Table name → (x's name, the scales as an initialiser).
    let mut tables: HashMap<String, (String, TensorProto)> = HashMap::new();
    for node in &graph.node {
        let standard = node.domain.is_empty() || node.domain == "ai.onnx";
        if !standard || node.op_type != "DequantizeLinear" || node.output.len() != 1 {
            continue;
        }
        let table = node.output[0].as_str();
        let inputs: Option<Vec<&TensorProto>> = node
            .input
            .iter()
            .filter(|name| !name.is_empty())
            .map(|name| initializers.get(name.as_str()).copied())
            .collect();
        let Some(inputs) = inputs else { continue };
        let only_gathered = !graph_outputs.contains(table)
            && graph.node.iter().all(|reader| {
                !reader.input.iter().any(|i| i == table)
                    || (reader.op_type == "Gather"
                        && reader.input.len() == 2
                        && reader.output.len() == 1
                        && reader.input[0] == table
                        && reader.input[1] != table
                        && attribute(reader, "axis").is_none_or(|a| a.i == 0))
            });
        if !only_gathered {
            continue;
        }
        let scales = row_scales(node, inputs[0], &inputs)
            .with_context(|| format!("DequantizeLinear node {:?} (output {table:?})", node.name))?;
        let Some(scales) = scales else { continue };
        let dims = if scales.len() == 1 {
            vec![]
        } else {
            vec![scales.len() as i64, 1]
        };
        let raw = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
        let scale = f32_tensor(&format!("{table}/row_scale"), &dims, raw);
        tables.insert(table.to_string(), (inputs[0].name.clone(), scale));
    }
    if tables.is_empty() {
        return Ok(0);
    }
    let nodes = std::mem::take(&mut graph.node);
    for node in nodes {
        if node.op_type == "DequantizeLinear" && tables.contains_key(&node.output[0]) {
            continue;
        }
        let table = node.input.first().and_then(|i| tables.get(i));
        let Some((x, scale)) = table.filter(|_| node.op_type == "Gather") else {
            graph.node.push(node);
            continue;
        };
        let y = &node.output[0];
        let op = |op_type: &str,
                  input: Vec<String>,
                  output: String,
                  attribute: Vec<AttributeProto>| NodeProto {
            op_type: op_type.into(),
            name: format!("{}/{output}", node.name),
            input,
            output: vec![output],
            attribute,
            ..Default::default()
        };
        let to_float = AttributeProto {
            name: "to".into(),
            i: DataType::Float as i64,
            r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
            ..Default::default()
        };
        let ids = node.input[1].clone();
        graph.node.push(op(
            "Gather",
            vec![x.clone(), ids.clone()],
            format!("{y}/int"),
            node.attribute.clone(),
        ));
        graph.node.push(op(
            "Cast",
            vec![format!("{y}/int")],
            format!("{y}/f32"),
            vec![to_float],
        ));
        let scale_of_rows = if scale.dims.is_empty() {
            scale.name.clone()
        } else {
            graph.node.push(op(
                "Gather",
                vec![scale.name.clone(), ids],
                format!("{y}/scale"),
                node.attribute.clone(),
            ));
            format!("{y}/scale")
        };
        graph.node.push(op(
            "Mul",
            vec![format!("{y}/f32"), scale_of_rows],
            y.clone(),
            vec![],
        ));
    }
    let count = tables.len();
    graph
        .initializer
        .extend(tables.into_values().map(|(_, scale)| scale));
    drop_unread_initializers(graph);
    Ok(count)
}

/// Whether a node of `graph` holds a subgraph (If, Loop, Scan), whose nodes may read the
/// outer graph's initialisers by name.
fn has_subgraphs(graph: &tract_onnx::pb::GraphProto) -> bool {
    graph.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    })
}

/// Initialisers this large are handed to tract as tensors by [`take_weights`] and
/// [`install_weights`] rather than through the protobuf.
const HANDED_OVER_BYTES: usize = 16 * 1024;

/// Takes the large weights out of the graph before tract parses it, so that tract does not
/// copy them all while the protobuf still holds them (at load, memory freshly touched is time:
/// 50 MB of copies for the default model). A weight is taken when it is an initialiser with
/// its bytes in `raw_data` (not external), of a type [`install_weights`] reads, read by a node
/// and not a graph output, in a graph without subgraphs (whose nodes may read it by name).
/// tract then sees each as an input it cannot resolve, which [`install_weights`] turns into
/// the constant tract would have made.
pub fn take_weights(model: &mut ModelProto) -> Vec<TensorProto> {
    let Some(graph) = model.graph.as_mut() else {
        return Vec::new();
    };
    if has_subgraphs(graph) {
        return Vec::new();
    }
    let read: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let take: Vec<bool> = graph
        .initializer
        .iter()
        .map(|t| {
            t.raw_data.len() >= HANDED_OVER_BYTES
                && !external(t)
                && raw_type(t).is_some()
                && read.contains(t.name.as_str())
                && !outputs.contains(t.name.as_str())
        })
        .collect();
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    for (t, take) in std::mem::take(&mut graph.initializer).into_iter().zip(take) {
        if take {
            taken.push(t);
        } else {
            kept.push(t);
        }
    }
    graph.initializer = kept;
    taken
}

/// tract's type for the initialisers [`take_weights`] may take.
fn raw_type(t: &TensorProto) -> Option<tract_onnx::prelude::DatumType> {
    use tract_onnx::prelude::DatumType;
    Some(match DataType::try_from(t.data_type).ok()? {
        DataType::Float => DatumType::F32,
        DataType::Float16 => DatumType::F16,
        DataType::Int8 => DatumType::I8,
        DataType::Uint8 => DatumType::U8,
        DataType::Int32 => DatumType::I32,
        DataType::Int64 => DatumType::I64,
        _ => return None,
    })
}

/// Turns the inputs tract could not resolve into the constants [`take_weights`] took, one at
/// a time (each weight's bytes are freed as soon as its tensor exists, so the next reuses the
/// memory), and drops them from `unresolved`. `outlets` is tract's `outlets_by_name`.
pub fn install_weights(
    model: &mut tract_onnx::prelude::InferenceModel,
    outlets: &HashMap<String, tract_onnx::prelude::OutletId>,
    unresolved: &mut Vec<String>,
    weights: Vec<TensorProto>,
) -> Result<()> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_hir::infer::InferenceOp;
    for t in weights {
        // Only a source tract made for the name becomes the constant: in a malformed graph a
        // node's output may share the weight's name, and tract wires its readers to the node
        // (its own constant for the initialiser would be left unread).
        let Some(outlet) = outlets.get(&t.name).copied() else {
            continue;
        };
        if !model.inputs.contains(&outlet) {
            continue;
        }
        let dt = raw_type(&t).context("take_weights took a type it cannot read")?;
        let shape = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| anyhow!("{}: negative dimension {d}", t.name)))
            .collect::<Result<Vec<usize>>>()?;
        // SAFETY: `from_raw_dt` checks the length against the shape; every byte pattern is a
        // valid value of these types.
        let tensor = unsafe { Tensor::from_raw_dt(dt, &shape, &t.raw_data) }
            .map_err(|e| anyhow!("{}: {e}", t.name))?
            .into_arc_tensor();
        drop(t.raw_data);
        let fact = InferenceFact::from(TypedFact::try_from(tensor.clone())?);
        let op: Box<dyn InferenceOp> =
            Box::new(tract_onnx::tract_hir::ops::konst::Const::new(tensor)?);
        let node = model.node_mut(outlet.node);
        node.op = op;
        node.outputs[0].fact = fact;
        model.inputs.retain(|i| i.node != outlet.node);
        unresolved.retain(|name| *name != t.name);
    }
    Ok(())
}

/// Drops the initialisers no node reads and the graph does not output.
fn drop_unread_initializers(graph: &mut tract_onnx::pb::GraphProto) {
    let still_read: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|node| node.input.iter().cloned())
        .chain(graph.output.iter().map(|o| o.name.clone()))
        .collect();
    graph
        .initializer
        .retain(|t| still_read.contains(t.name.as_str()));
}

/// Folds every remaining compact weight into an f32 initialiser. Returns how many.
fn expand_folded(graph: &mut tract_onnx::pb::GraphProto) -> Result<usize> {
    let index: HashMap<&str, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut folded = Vec::new();
    let mut folded_nodes = HashSet::new();
    for (n, node) in graph.node.iter().enumerate() {
        let standard = node.domain.is_empty() || node.domain == "ai.onnx";
        let is_dequantize = standard && node.op_type == "DequantizeLinear";
        let is_f16_cast = standard
            && node.op_type == "Cast"
            && attribute(node, "to").is_some_and(|a| a.i == DataType::Float as i64);
        if !is_dequantize && !is_f16_cast {
            continue;
        }
        let inputs: Option<Vec<&TensorProto>> = node
            .input
            .iter()
            .filter(|name| !name.is_empty())
            .map(|name| index.get(name.as_str()).map(|&i| &graph.initializer[i]))
            .collect();
        let Some(inputs) = inputs else {
            continue;
        };
        let tensor = if is_dequantize {
            dequantize(node, &inputs)
        } else if is_f16_cast
            && inputs.len() == 1
            && inputs[0].data_type == DataType::Float16 as i32
        {
            widen_f16(node, inputs[0])
        } else {
            continue;
        };
        let tensor = tensor.with_context(|| {
            format!(
                "{} node {:?} (output {:?})",
                node.op_type,
                node.name,
                node.output.first().map(String::as_str).unwrap_or_default()
            )
        })?;
        folded.push(tensor);
        folded_nodes.insert(n);
    }
    if folded.is_empty() {
        return Ok(0);
    }
    let count = folded.len();
    let mut n = 0;
    graph.node.retain(|_| {
        n += 1;
        !folded_nodes.contains(&(n - 1))
    });
    // The integer weights and scales are now unread (unless something else reads them).
    drop_unread_initializers(graph);
    graph.initializer.extend(folded);
    Ok(count)
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn dequantize(node: &NodeProto, inputs: &[&TensorProto]) -> Result<TensorProto> {
    ensure!(
        (2..=3).contains(&inputs.len()) && node.output.len() == 1,
        "expected inputs (x, x_scale[, x_zero_point]) and one output"
    );
    if attribute(node, "block_size").is_some_and(|a| a.i != 0) {
        bail!(
            "blocked quantisation (block_size) is not supported; use per-tensor or per-axis scales"
        );
    }
    let (x, scale) = (inputs[0], inputs[1]);
    let values = Integers::of(x).context("x")?;
    let dims = shape(x, values.len()).context("x")?;
    let scales = floats(scale).context("x_scale")?;
    let zero_points = match inputs.get(2) {
        Some(zp) => {
            ensure!(
                zp.data_type == x.data_type,
                "x_zero_point's type differs from x's"
            );
            let zp = Integers::of(zp).context("x_zero_point")?;
            (0..zp.len()).map(|i| zp.get(i)).collect()
        }
        None => vec![0; scales.len()],
    };
    ensure!(
        zero_points.len() == scales.len(),
        "x_scale has {} values, x_zero_point {}",
        scales.len(),
        zero_points.len()
    );
    let (outer, channels, inner) = channel_layout(node, &dims, scales.len())?;
    // Written in place, a run at a time: no intermediate copy of the values.
    let mut raw = vec![0u8; values.len() * 4];
    if inner == 1 {
        // One scale per column (the last axis): each row is a run with the channels' scales.
        for (o, out) in raw.chunks_exact_mut(channels * 4).enumerate().take(outer) {
            values.dequantize_row(o * channels, out, &zero_points, &scales);
        }
    } else {
        for o in 0..outer {
            for c in 0..channels {
                let start = (o * channels + c) * inner;
                let out = &mut raw[start * 4..(start + inner) * 4];
                values.dequantize_into(start, out, zero_points[c], scales[c]);
            }
        }
    }
    Ok(f32_tensor(&node.output[0], &x.dims, raw))
}

fn widen_f16(node: &NodeProto, x: &TensorProto) -> Result<TensorProto> {
    ensure!(!external(x), "stored in an external file");
    ensure!(node.output.len() == 1, "expected one output");
    // f16 values are 2 little-endian bytes in raw_data, or one per int32_data entry.
    let widen = |bits: u16| half::f16::from_bits(bits).to_f32().to_le_bytes();
    let raw = if x.raw_data.is_empty() {
        shape(x, x.int32_data.len())?;
        let mut raw = vec![0u8; x.int32_data.len() * 4];
        for (dst, &v) in raw.chunks_exact_mut(4).zip(&x.int32_data) {
            dst.copy_from_slice(&widen(v as u16));
        }
        raw
    } else {
        ensure!(
            x.raw_data.len().is_multiple_of(2),
            "raw_data is not a whole number of f16"
        );
        shape(x, x.raw_data.len() / 2)?;
        let mut raw = vec![0u8; x.raw_data.len() * 2];
        for (dst, src) in raw.chunks_exact_mut(4).zip(x.raw_data.chunks_exact(2)) {
            dst.copy_from_slice(&widen(u16::from_le_bytes([src[0], src[1]])));
        }
        raw
    };
    Ok(f32_tensor(&node.output[0], &x.dims, raw))
}

/// The tensor's dimensions, checked to be non-negative and to hold `values` values.
fn shape(t: &TensorProto, values: usize) -> Result<Vec<usize>> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow!("negative dimension {d}")))
        .collect::<Result<_>>()?;
    ensure!(
        dims.iter().product::<usize>() == values,
        "holds {values} values for shape {dims:?}"
    );
    Ok(dims)
}

/// An f32 initialiser from little-endian bytes.
fn f32_tensor(name: &str, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: raw,
        ..Default::default()
    }
}

fn external(t: &TensorProto) -> bool {
    t.data_location == Some(tract_onnx::pb::tensor_proto::DataLocation::External as i32)
}

/// Per tensor (one scale), or per channel along the node's `axis` (default 1): the number of
/// blocks before the axis, the channels, and the values of one channel within a block.
fn channel_layout(
    node: &NodeProto,
    dims: &[usize],
    scales: usize,
) -> Result<(usize, usize, usize)> {
    if scales == 1 {
        return Ok((1, 1, dims.iter().product()));
    }
    let rank = dims.len() as i64;
    let axis = attribute(node, "axis").map(|a| a.i).unwrap_or(1);
    let axis = if axis < 0 { axis + rank } else { axis };
    ensure!(
        (0..rank).contains(&axis),
        "axis {axis} is outside x's rank {rank}"
    );
    let axis = axis as usize;
    ensure!(
        dims[axis] == scales,
        "x_scale has {scales} values but x has {} channels along axis {axis}",
        dims[axis]
    );
    Ok((
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
    ))
}

/// The values of an int8, uint8 or int32 tensor, read where they are (`raw_data` or
/// `int32_data`) rather than copied out.
enum Integers<'a> {
    I8(&'a [u8]),
    U8(&'a [u8]),
    /// Little-endian int32 bytes.
    I32(&'a [u8]),
    Listed(&'a [i32]),
}

impl<'a> Integers<'a> {
    fn of(t: &'a TensorProto) -> Result<Integers<'a>> {
        ensure!(!external(t), "stored in an external file");
        let raw = &t.raw_data[..];
        Ok(match DataType::try_from(t.data_type) {
            Ok(DataType::Int8) if !raw.is_empty() => Integers::I8(raw),
            Ok(DataType::Uint8) if !raw.is_empty() => Integers::U8(raw),
            Ok(DataType::Int32) if !raw.is_empty() => {
                ensure!(
                    raw.len().is_multiple_of(4),
                    "raw_data is not a whole number of int32"
                );
                Integers::I32(raw)
            }
            Ok(DataType::Int8 | DataType::Uint8 | DataType::Int32) => {
                Integers::Listed(&t.int32_data)
            }
            _ => bail!(
                "type {} is not one of int8, uint8, int32",
                DataType::try_from(t.data_type)
                    .map(|d| d.as_str_name())
                    .unwrap_or("unknown")
            ),
        })
    }

    fn len(&self) -> usize {
        match self {
            Integers::I8(b) | Integers::U8(b) => b.len(),
            Integers::I32(b) => b.len() / 4,
            Integers::Listed(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> i32 {
        match self {
            Integers::I8(b) => b[i] as i8 as i32,
            Integers::U8(b) => b[i] as i32,
            Integers::I32(b) => {
                i32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
            }
            Integers::Listed(v) => v[i],
        }
    }

    /// `out` (little-endian f32 bytes) = (values[start + i] − zeros[i]) × scales[i].
    fn dequantize_row(&self, start: usize, out: &mut [u8], zeros: &[i32], scales: &[f32]) {
        let n = out.len() / 4;
        let channels = zeros.iter().zip(scales);
        match self {
            Integers::I8(b) => {
                for ((dst, &v), (&z, &s)) in out
                    .chunks_exact_mut(4)
                    .zip(&b[start..start + n])
                    .zip(channels)
                {
                    dst.copy_from_slice(&(((v as i8 as i32 - z) as f32) * s).to_le_bytes());
                }
            }
            _ => {
                for (i, (dst, (&z, &s))) in out.chunks_exact_mut(4).zip(channels).enumerate() {
                    dst.copy_from_slice(&(((self.get(start + i) - z) as f32) * s).to_le_bytes());
                }
            }
        }
    }

    /// `out` (little-endian f32 bytes) = (values[start..] − zero) × scale, as many as fit.
    fn dequantize_into(&self, start: usize, out: &mut [u8], zero: i32, scale: f32) {
        let n = out.len() / 4;
        let write = |out: &mut [u8], values: &mut dyn Iterator<Item = i32>| {
            for (dst, v) in out.chunks_exact_mut(4).zip(values) {
                dst.copy_from_slice(&(((v - zero) as f32) * scale).to_le_bytes());
            }
        };
        // The int8 case is the common one (and the hot loop of a model's load): kept
        // monomorphic so that it vectorises.
        match self {
            Integers::I8(b) => {
                for (dst, &v) in out.chunks_exact_mut(4).zip(&b[start..start + n]) {
                    dst.copy_from_slice(&(((v as i8 as i32 - zero) as f32) * scale).to_le_bytes());
                }
            }
            _ => write(out, &mut (start..start + n).map(|i| self.get(i))),
        }
    }
}

/// The values of an f32 tensor, from `raw_data` or `float_data`.
fn floats(t: &TensorProto) -> Result<Vec<f32>> {
    ensure!(!external(t), "stored in an external file");
    ensure!(t.data_type == DataType::Float as i32, "not float32");
    let values: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        ensure!(
            t.raw_data.len().is_multiple_of(4),
            "raw_data is not a whole number of f32"
        );
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    ensure!(!values.is_empty(), "empty");
    ensure!(
        values.iter().all(|v| v.is_finite()),
        "holds a value that is not finite"
    );
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::GraphProto;

    fn tensor(name: &str, dt: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            data_type: dt as i32,
            dims: dims.to_vec(),
            raw_data: raw,
            ..Default::default()
        }
    }

    fn f32s(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn model(axis: Option<i64>, scales: &[f32], zero_points: Option<Vec<u8>>) -> ModelProto {
        let x = tensor(
            "w_q",
            DataType::Int8,
            &[2, 3],
            vec![1, 2, 3, 0xff, 0xfe, 0x81],
        );
        let s = tensor("w_s", DataType::Float, &[scales.len() as i64], f32s(scales));
        let mut inits = vec![x, s];
        let mut inputs = vec!["w_q".to_string(), "w_s".to_string()];
        if let Some(zp) = zero_points {
            inits.push(tensor("w_z", DataType::Int8, &[zp.len() as i64], zp));
            inputs.push("w_z".into());
        }
        let node = NodeProto {
            op_type: "DequantizeLinear".into(),
            name: "dq".into(),
            input: inputs,
            output: vec!["w".into()],
            attribute: axis
                .map(|i| AttributeProto {
                    name: "axis".into(),
                    i,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let reader = NodeProto {
            op_type: "MatMul".into(),
            input: vec!["input".into(), "w".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        ModelProto {
            graph: Some(GraphProto {
                node: vec![node, reader],
                initializer: inits,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn folded(model: &ModelProto) -> (Vec<usize>, Vec<f32>) {
        let graph = model.graph.as_ref().unwrap();
        assert_eq!(graph.node.len(), 1, "the DequantizeLinear node is gone");
        assert_eq!(graph.initializer.len(), 1, "only the f32 weight is left");
        let w = &graph.initializer[0];
        assert_eq!(w.name, "w");
        (
            w.dims.iter().map(|&d| d as usize).collect(),
            floats(w).unwrap(),
        )
    }

    #[test]
    fn per_output_column_scales() {
        // x = [[1, 2, 3], [-1, -2, -127]], one scale per column (axis 1).
        let mut m = model(Some(1), &[0.5, 0.25, 2.0], None);
        assert_eq!(expand_compact_weights(&mut m).unwrap(), 1);
        let (dims, w) = folded(&m);
        assert_eq!(dims, [2, 3]);
        assert_eq!(w, [0.5, 0.5, 6.0, -0.5, -0.5, -254.0]);
    }

    #[test]
    fn per_row_scales_with_zero_points() {
        let mut m = model(Some(0), &[1.0, 0.5], Some(vec![1, 0xff]));
        expand_compact_weights(&mut m).unwrap();
        let (_, w) = folded(&m);
        // row 0: (x − 1) × 1; row 1: (x + 1) × 0.5
        assert_eq!(w, [0.0, 1.0, 2.0, 0.0, -0.5, -63.0]);
    }

    #[test]
    fn one_scale_for_the_tensor_and_negative_axis() {
        let mut m = model(None, &[0.125], None);
        expand_compact_weights(&mut m).unwrap();
        assert_eq!(folded(&m).1, [0.125, 0.25, 0.375, -0.125, -0.25, -15.875]);
        let mut m = model(Some(-1), &[1.0, 1.0, 1.0], None);
        expand_compact_weights(&mut m).unwrap();
        assert_eq!(folded(&m).1, [1.0, 2.0, 3.0, -1.0, -2.0, -127.0]);
    }

    #[test]
    fn mismatched_scales_are_refused_with_the_node_named() {
        let mut m = model(Some(1), &[1.0, 1.0], None);
        let err = format!("{:#}", expand_compact_weights(&mut m).unwrap_err());
        assert!(err.contains("\"dq\""), "{err}");
        assert!(err.contains("2 values but x has 3 channels"), "{err}");
        let mut m = model(Some(1), &[1.0, f32::NAN, 1.0], None);
        let err = format!("{:#}", expand_compact_weights(&mut m).unwrap_err());
        assert!(err.contains("not finite"), "{err}");
        let mut m = model(Some(2), &[1.0, 1.0, 1.0], None);
        let err = format!("{:#}", expand_compact_weights(&mut m).unwrap_err());
        assert!(err.contains("outside x's rank"), "{err}");
    }

    #[test]
    fn f16_weights_behind_a_cast_are_widened() {
        let mut m = model(Some(1), &[1.0, 1.0, 1.0], None);
        let graph = m.graph.as_mut().unwrap();
        let halves: Vec<u8> = [1.0f32, -2.5, 0.099_975_586, 65504.0, 0.0, -0.0]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        graph.initializer = vec![tensor("w_h", DataType::Float16, &[2, 3], halves)];
        graph.node[0] = NodeProto {
            op_type: "Cast".into(),
            name: "cast".into(),
            input: vec!["w_h".into()],
            output: vec!["w".into()],
            attribute: vec![AttributeProto {
                name: "to".into(),
                i: DataType::Float as i64,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(expand_compact_weights(&mut m).unwrap(), 1);
        assert_eq!(folded(&m).1, [1.0, -2.5, 0.099_975_586, 65504.0, 0.0, -0.0]);
    }

    /// A table `t` (int8 [4, 3], per-row scales, zero points of 0) read by `Gather(t, ids)`,
    /// and, with `matmul`, by a `MatMul` too.
    fn gathered_table(matmul: bool, zero_points: [u8; 4]) -> ModelProto {
        let x: Vec<u8> = [1i8, 2, 3, -1, -2, -3, 127, -127, 0, 5, 6, 7]
            .iter()
            .map(|&v| v as u8)
            .collect();
        let inits = vec![
            tensor("t_q", DataType::Int8, &[4, 3], x),
            tensor("t_s", DataType::Float, &[4], f32s(&[0.5, 0.25, 0.1, 3.0])),
            tensor("t_z", DataType::Int8, &[4], zero_points.to_vec()),
        ];
        let mut nodes = vec![
            NodeProto {
                op_type: "DequantizeLinear".into(),
                name: "dq".into(),
                input: vec!["t_q".into(), "t_s".into(), "t_z".into()],
                output: vec!["t".into()],
                attribute: vec![AttributeProto {
                    name: "axis".into(),
                    i: 0,
                    ..Default::default()
                }],
                ..Default::default()
            },
            NodeProto {
                op_type: "Gather".into(),
                name: "lookup".into(),
                input: vec!["t".into(), "ids".into()],
                output: vec!["y".into()],
                ..Default::default()
            },
        ];
        if matmul {
            nodes.push(NodeProto {
                op_type: "MatMul".into(),
                input: vec!["y".into(), "t".into()],
                output: vec!["z".into()],
                ..Default::default()
            });
        }
        let value = |name: &str| tract_onnx::pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(tract_onnx::pb::TypeProto {
                value: Some(tract_onnx::pb::type_proto::Value::TensorType(
                    tract_onnx::pb::type_proto::Tensor {
                        elem_type: if name == "ids" {
                            DataType::Int64 as i32
                        } else {
                            DataType::Float as i32
                        },
                        shape: None,
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        ModelProto {
            graph: Some(GraphProto {
                node: nodes,
                initializer: inits,
                input: vec![value("ids")],
                output: vec![value(if matmul { "z" } else { "y" })],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Runs `model` in tract on `ids` and returns its output's values.
    fn run(model: &ModelProto, ids: &[i64]) -> Vec<f32> {
        run_handed(model, Vec::new(), ids).unwrap()
    }

    /// [`run`] with `weights` (taken from `model` by [`take_weights`]) installed after parsing.
    fn run_handed(model: &ModelProto, weights: Vec<TensorProto>, ids: &[i64]) -> Result<Vec<f32>> {
        use tract_onnx::prelude::*;
        let parsed = tract_onnx::onnx().parse(model, None).unwrap();
        let (mut parsed, mut unresolved) = (parsed.model, parsed.unresolved_inputs);
        let outlets = parsed
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), OutletId::new(n.id, 0)))
            .collect();
        install_weights(&mut parsed, &outlets, &mut unresolved, weights)?;
        assert!(unresolved.is_empty(), "{unresolved:?}");
        parsed
            .set_input_fact(
                0,
                InferenceFact::dt_shape(i64::datum_type(), tvec![ids.len()]),
            )
            .unwrap();
        let plan = parsed.into_optimized().unwrap().into_runnable().unwrap();
        let input = tract_ndarray::arr1(ids).into_tensor();
        let out = plan.run(tvec![input.into()]).unwrap();
        Ok(out[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect())
    }

    /// `Gather` over an f32 table of `rows` × 8 values (row r, column c: r + c / 8), output `y`.
    fn f32_table(rows: usize) -> ModelProto {
        let mut m = gathered_table(false, [0; 4]);
        let graph = m.graph.as_mut().unwrap();
        graph.node.remove(0);
        graph.node[0].input[0] = "t".into();
        let values: Vec<f32> = (0..rows * 8)
            .map(|i| (i / 8) as f32 + (i % 8) as f32 / 8.0)
            .collect();
        graph.initializer = vec![tensor(
            "t",
            DataType::Float,
            &[rows as i64, 8],
            f32s(&values),
        )];
        m
    }

    #[test]
    fn large_weights_handed_to_tract_as_tensors_give_the_same_results() {
        let model = f32_table(1024); // 32 KiB: handed over
        let plain = run(&model, &[3, 1000]);
        let expected: Vec<f32> = [3.0f32, 1000.0]
            .iter()
            .flat_map(|r| (0..8).map(move |c| r + c as f32 / 8.0))
            .collect();
        assert_eq!(plain, expected);
        let mut taken = model.clone();
        let weights = take_weights(&mut taken);
        assert_eq!(weights.len(), 1);
        assert!(taken.graph.as_ref().unwrap().initializer.is_empty());
        assert_eq!(run_handed(&taken, weights, &[3, 1000]).unwrap(), expected);

        // Also declared as a graph input (ONNX before IR 4 lists initialisers there).
        let mut listed = model.clone();
        let graph = listed.graph.as_mut().unwrap();
        let mut input = graph.input[0].clone();
        input.name = "t".into();
        graph.input.push(input);
        let weights = take_weights(&mut listed);
        assert_eq!(weights.len(), 1);
        assert_eq!(run_handed(&listed, weights, &[3, 1000]).unwrap(), expected);
    }

    #[test]
    fn small_outputs_and_subgraph_weights_stay_in_the_graph() {
        let mut small = f32_table(64); // 2 KiB
        assert!(take_weights(&mut small).is_empty());
        let mut output = f32_table(1024);
        let graph = output.graph.as_mut().unwrap();
        let mut out = graph.output[0].clone();
        out.name = "t".into();
        graph.output.push(out);
        assert!(take_weights(&mut output).is_empty());
        let mut sub = f32_table(1024);
        let graph = sub.graph.as_mut().unwrap();
        graph.node[0].attribute.push(AttributeProto {
            name: "body".into(),
            g: Some(GraphProto::default()),
            ..Default::default()
        });
        assert!(take_weights(&mut sub).is_empty());
    }

    #[test]
    fn a_handed_weight_whose_bytes_do_not_fit_its_shape_is_refused_by_name() {
        let mut model = f32_table(1024);
        let mut weights = take_weights(&mut model);
        let bytes = weights[0].raw_data.len();
        weights[0].raw_data.truncate(bytes - 4);
        let error = run_handed(&model, weights, &[3]).unwrap_err().to_string();
        assert!(error.starts_with("t: "), "{error}");
    }

    #[test]
    fn tables_only_gathered_stay_8_bit_and_give_the_expanded_values() {
        let mut m = gathered_table(false, [0; 4]);
        assert_eq!(expand_compact_weights(&mut m).unwrap(), 1);
        let graph = m.graph.as_ref().unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Gather", "Cast", "Gather", "Mul"]);
        let kept: Vec<(&str, i32)> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t.data_type))
            .collect();
        assert!(kept.contains(&("t_q", DataType::Int8 as i32)), "{kept:?}");
        assert_eq!(kept.len(), 2, "the integers and the rows' scales: {kept:?}");
        // Rows 3, 0, 3, 2: (x − 0) × the row's scale, exactly as the expanded table holds it.
        let expected: Vec<f32> = [(3, 3.0f32), (0, 0.5), (3, 3.0), (2, 0.1)]
            .iter()
            .flat_map(|&(row, s)| {
                [[1i8, 2, 3], [-1, -2, -3], [127, -127, 0], [5, 6, 7]][row].map(|v| v as f32 * s)
            })
            .collect();
        assert_eq!(run(&m, &[3, 0, 3, 2]), expected);
    }

    #[test]
    fn a_gather_without_its_indices_is_left_to_tract_to_refuse() {
        let mut m = gathered_table(false, [0; 4]);
        m.graph.as_mut().unwrap().node[1].input.truncate(1);
        expand_compact_weights(&mut m).unwrap();
        let graph = m.graph.as_ref().unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            ["Gather"],
            "the table expanded as before, the node untouched"
        );
    }

    #[test]
    fn tables_read_otherwise_or_with_zero_points_are_expanded() {
        // Read by a MatMul as well: expanded once, as before.
        let mut m = gathered_table(true, [0; 4]);
        expand_compact_weights(&mut m).unwrap();
        let graph = m.graph.as_ref().unwrap();
        assert!(graph.node.iter().all(|n| n.op_type != "Cast"));
        assert_eq!(graph.initializer.len(), 1);
        assert_eq!(graph.initializer[0].data_type, DataType::Float as i32);
        // A zero point that is not 0: expanded too, (x − z) × s.
        let mut m = gathered_table(false, [0, 0, 1, 0]);
        expand_compact_weights(&mut m).unwrap();
        let graph = m.graph.as_ref().unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Gather"]);
        assert_eq!(run(&m, &[2]), [126.0 * 0.1, -128.0 * 0.1, -0.1]);
    }

    #[test]
    fn graphs_without_dequantize_nodes_are_untouched() {
        let mut m = model(Some(1), &[1.0, 1.0, 1.0], None);
        m.graph.as_mut().unwrap().node[0].op_type = "Identity".into();
        let before = m.clone();
        assert_eq!(expand_compact_weights(&mut m).unwrap(), 0);
        assert_eq!(m, before);
    }
}
