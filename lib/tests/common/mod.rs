pub mod colors;
pub mod http;
pub mod lcg;
pub mod pets;
pub mod tmp;
