use burn::prelude::*;
fn main() {
    let dev = floe_exporter::train::DeviceName::VulkanCpu.open().unwrap();
    let what = std::env::args().nth(1).unwrap_or_default();
    match what.as_str() {
        "sumdim" => { let t = Tensor::<2>::ones([100, 100], &dev); println!("{:?}", t.sum_dim(1).into_data().to_vec::<f32>().unwrap()[0]); }
        "sum" => { let t = Tensor::<1>::ones([10000], &dev); println!("{}", t.sum().into_scalar::<f32>()); }
        "isum" => { let t = Tensor::<1, Int>::ones([10000], &dev); println!("{}", t.sum().into_scalar::<i32>()); }
        "matmul" => { let t = Tensor::<2>::ones([64, 64], &dev); println!("{}", t.clone().matmul(t).sum_dim(1).sum_dim(0).into_scalar::<f32>()); }
        "fused" => { let x = Tensor::<1>::zeros([10], &dev); let p = Tensor::<2>::zeros([10, 23], &dev); let (y, l) = floe_exporter::flow::fused::forward(x, p, 8, 3.0); println!("{:?} {:?}", y.into_data().to_vec::<f32>().unwrap(), l.into_data().to_vec::<f32>().unwrap()); }
        _ => {}
    }
}
