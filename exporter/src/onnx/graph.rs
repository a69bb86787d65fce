//! A small builder for ONNX graphs (opset 17): named values, constant
//! initializers, one node per call.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto::{Tensor, Value};
use onnx_protobuf::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// The opset the graphs use.
pub const OPSET: i64 = 17;
/// ONNX IR version 8 (the one opset 17 shipped with).
const IR_VERSION: i64 = 8;

/// A graph under construction.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    /// Initializers by `(type, dims, bytes)`: a constant is stored once however
    /// often the graph uses it (a MADE layer's inverse evaluates its
    /// conditioner D times with the same weights).
    known: std::collections::HashMap<(i32, Vec<i64>, Vec<u8>), String>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next: usize,
}

/// An attribute of a node.
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
}

fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Some(v) => dimension::Value::DimValue(*v),
                    None => dimension::Value::DimParam("N".into()),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let tensor = Tensor { elem_type: elem as i32, shape: Some(shape).into(), ..Default::default() };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto { value: Some(Value::TensorType(tensor)), ..Default::default() }).into(),
        ..Default::default()
    }
}

impl Graph {
    /// A fresh value name.
    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// A float input `[N, dims…]` (`None` is the batch dimension `N`).
    pub fn input(&mut self, name: &str, dims: &[Option<i64>]) -> String {
        self.inputs.push(value_info(name, DataType::FLOAT, dims));
        name.into()
    }

    /// Mark `value` as the float output `name` of shape `dims`.
    pub fn output(&mut self, value: &str, name: &str, dims: &[Option<i64>]) {
        self.op_named("Identity", &[value], &[], name);
        self.outputs.push(value_info(name, DataType::FLOAT, dims));
    }

    fn init(&mut self, hint: &str, elem: DataType, dims: &[i64], raw: Vec<u8>) -> String {
        let key = (elem as i32, dims.to_vec(), raw);
        if let Some(name) = self.known.get(&key) {
            return name.clone();
        }
        let raw = key.2.clone();
        let name = self.fresh(hint);
        self.known.insert(key, name.clone());
        self.inits.push(TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: elem as i32,
            raw_data: raw,
            ..Default::default()
        });
        name
    }

    /// A constant f32 tensor.
    pub fn f32s(&mut self, hint: &str, dims: &[i64], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, data.len());
        self.init(hint, DataType::FLOAT, dims, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// A constant f32 scalar.
    pub fn f32(&mut self, v: f32) -> String {
        self.f32s("c", &[], &[v])
    }

    /// A constant i64 tensor.
    pub fn i64s(&mut self, hint: &str, dims: &[i64], data: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, data.len());
        self.init(hint, DataType::INT64, dims, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// A constant 1-D i64 vector.
    pub fn ints(&mut self, data: &[i64]) -> String {
        self.i64s("i", &[data.len() as i64], data)
    }

    /// A constant bool tensor.
    pub fn bools(&mut self, hint: &str, dims: &[i64], data: &[bool]) -> String {
        self.init(hint, DataType::BOOL, dims, data.iter().map(|&v| u8::from(v)).collect())
    }

    /// A constant i32 tensor.
    pub fn i32s(&mut self, hint: &str, dims: &[i64], data: &[i32]) -> String {
        self.init(hint, DataType::INT32, dims, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn op_named(&mut self, op: &str, inputs: &[&str], attrs: &[Attr], out: &str) {
        let attribute = attrs
            .iter()
            .map(|a| match *a {
                Attr::Int(n, v) => {
                    AttributeProto { name: n.into(), i: v, type_: AttributeType::INT.into(), ..Default::default() }
                }
                Attr::Ints(n, ref v) => AttributeProto {
                    name: n.into(),
                    ints: v.clone(),
                    type_: AttributeType::INTS.into(),
                    ..Default::default()
                },
            })
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![out.to_owned()],
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
    }

    /// One node `op(inputs)` with attributes; its single output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: &[Attr]) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.op_named(op, inputs, attrs, &out);
        out
    }

    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.op("Add", &[a, b], &[])
    }

    pub fn sub(&mut self, a: &str, b: &str) -> String {
        self.op("Sub", &[a, b], &[])
    }

    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.op("Mul", &[a, b], &[])
    }

    pub fn div(&mut self, a: &str, b: &str) -> String {
        self.op("Div", &[a, b], &[])
    }

    pub fn unary(&mut self, op: &str, a: &str) -> String {
        self.op(op, &[a], &[])
    }

    /// `x[..., start..end]` along `axis`.
    pub fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64) -> String {
        let (s, e, a) = (self.ints(&[start]), self.ints(&[end]), self.ints(&[axis]));
        self.op("Slice", &[x, &s, &e, &a], &[])
    }

    /// Concatenate along `axis`.
    pub fn concat(&mut self, parts: &[&str], axis: i64) -> String {
        self.op("Concat", parts, &[Attr::Int("axis", axis)])
    }

    /// Reshape to `shape` (0 copies a dimension, -1 infers one).
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.ints(shape);
        self.op("Reshape", &[x, &s], &[])
    }

    /// Sum over the last axis, dropping it.
    pub fn sum_last(&mut self, x: &str) -> String {
        let a = self.ints(&[-1]);
        self.op("ReduceSum", &[x, &a], &[Attr::Int("keepdims", 0)])
    }

    /// `x` cast to ONNX type `to`.
    pub fn cast(&mut self, x: &str, to: DataType) -> String {
        self.op("Cast", &[x], &[Attr::Int("to", to as i64)])
    }

    /// The finished model.
    pub fn model(self, doc: String) -> ModelProto {
        let graph = GraphProto {
            name: "floe".into(),
            node: self.nodes,
            initializer: self.inits,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        };
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET, ..Default::default() }],
            producer_name: "floe".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc,
            graph: Some(graph).into(),
            ..Default::default()
        }
    }
}
