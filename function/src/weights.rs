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
    let still_read: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|node| node.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .collect();
    graph
        .initializer
        .retain(|t| still_read.contains(t.name.as_str()));
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
    let values = integers(x).context("x")?;
    let dims = shape(x, values.len()).context("x")?;
    let scales = floats(scale).context("x_scale")?;
    let zero_points = match inputs.get(2) {
        Some(zp) => {
            ensure!(
                zp.data_type == x.data_type,
                "x_zero_point's type differs from x's"
            );
            integers(zp).context("x_zero_point")?
        }
        None => vec![0; scales.len()],
    };
    ensure!(
        zero_points.len() == scales.len(),
        "x_scale has {} values, x_zero_point {}",
        scales.len(),
        zero_points.len()
    );
    // Per tensor, or per channel along `axis` (default 1).
    let (outer, channels, inner) = if scales.len() == 1 {
        (1, 1, values.len())
    } else {
        let rank = dims.len() as i64;
        let axis = attribute(node, "axis").map(|a| a.i).unwrap_or(1);
        let axis = if axis < 0 { axis + rank } else { axis };
        ensure!(
            (0..rank).contains(&axis),
            "axis {axis} is outside x's rank {rank}"
        );
        let axis = axis as usize;
        ensure!(
            dims[axis] == scales.len(),
            "x_scale has {} values but x has {} channels along axis {axis}",
            scales.len(),
            dims[axis]
        );
        (
            dims[..axis].iter().product(),
            dims[axis],
            dims[axis + 1..].iter().product(),
        )
    };
    let mut raw = Vec::with_capacity(values.len() * 4);
    for o in 0..outer {
        for c in 0..channels {
            let (s, z) = (scales[c], zero_points[c]);
            let start = (o * channels + c) * inner;
            for &v in &values[start..start + inner] {
                raw.extend_from_slice(&(((v - z) as f32) * s).to_le_bytes());
            }
        }
    }
    Ok(f32_tensor(&node.output[0], &x.dims, raw))
}

fn widen_f16(node: &NodeProto, x: &TensorProto) -> Result<TensorProto> {
    ensure!(!external(x), "stored in an external file");
    ensure!(node.output.len() == 1, "expected one output");
    // f16 values are 2 little-endian bytes in raw_data, or one per int32_data entry.
    let bits: Vec<u16> = if x.raw_data.is_empty() {
        x.int32_data.iter().map(|&v| v as u16).collect()
    } else {
        ensure!(
            x.raw_data.len().is_multiple_of(2),
            "raw_data is not a whole number of f16"
        );
        x.raw_data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    };
    shape(x, bits.len())?;
    let mut raw = Vec::with_capacity(bits.len() * 4);
    for b in bits {
        raw.extend_from_slice(&half::f16::from_bits(b).to_f32().to_le_bytes());
    }
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

/// The values of an int8, uint8 or int32 tensor, from `raw_data` or `int32_data`.
fn integers(t: &TensorProto) -> Result<Vec<i32>> {
    ensure!(!external(t), "stored in an external file");
    let raw = &t.raw_data;
    Ok(match DataType::try_from(t.data_type) {
        Ok(DataType::Int8) if !raw.is_empty() => raw.iter().map(|&b| b as i8 as i32).collect(),
        Ok(DataType::Uint8) if !raw.is_empty() => raw.iter().map(|&b| b as i32).collect(),
        Ok(DataType::Int32) if !raw.is_empty() => {
            ensure!(
                raw.len().is_multiple_of(4),
                "raw_data is not a whole number of int32"
            );
            raw.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        Ok(DataType::Int8 | DataType::Uint8 | DataType::Int32) => t.int32_data.clone(),
        _ => bail!(
            "type {} is not one of int8, uint8, int32",
            DataType::try_from(t.data_type)
                .map(|d| d.as_str_name())
                .unwrap_or("unknown")
        ),
    })
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

    #[test]
    fn graphs_without_dequantize_nodes_are_untouched() {
        let mut m = model(Some(1), &[1.0, 1.0, 1.0], None);
        m.graph.as_mut().unwrap().node[0].op_type = "Identity".into();
        let before = m.clone();
        assert_eq!(expand_compact_weights(&mut m).unwrap(), 0);
        assert_eq!(m, before);
    }
}
