pub mod colors;
pub mod http;
