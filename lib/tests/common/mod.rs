pub mod colors;
pub mod http;
pub mod pets;
pub mod tmp;
