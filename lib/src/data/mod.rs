//! Data: from files on disk to batches of tensors.
//!
//! ```text
//! external    untar_data(URLs::PETS): download, verify, extract (once)
//! files       get_image_files: the image files under a folder
//! block       the data block API: ImageList -> split -> label -> transform -> databunch
//! labels      label from a regex / function / folder / list; the random split
//! image       open any image file as RGB
//! transforms  get_transforms(): flip, rotate, zoom, warp, lighting - one resampling pass
//! loader      DataLoader: parallel decode + augment, prefetching, batches on the device
//! bunch       ImageDataBunch: from_name_re, from_folder, from_csv, ...; normalize
//! show        show_batch: a grid of training images with their labels
//! verify      verify_images: find (and delete) unreadable images, shrink big ones
//! download_images  download_images: the images of a file of URLs, in parallel (lesson 2)
//! tensors     Data (what a Learner needs of its data); DataBunch::from_tensors
//! ```

mod archive;
pub mod block;
pub mod bunch;
pub mod download;
pub mod download_images;
pub mod error;
pub mod external;
pub mod files;
pub mod image;
pub mod labels;
pub mod loader;
pub mod order;
pub mod show;
pub mod tensors;
pub mod transforms;
pub mod verify;

pub use block::{
    CsvOptions, ImageList, ItemList, ItemLists, LabelLists, PointsItemList, SegmentationItemList,
    Size,
};
pub use bunch::{DataOptions, ImageDataBunch};
pub use download_images::{
    download_images, download_images_with, DownloadImagesOptions, DownloadImagesReport,
};
pub use error::DataError;
pub use external::{
    download_url, download_url_with, known_checksum, untar_data, untar_data_with, Checksum,
    DownloadOptions, URLs, UntarOptions,
};
pub use files::{get_files, get_image_files, is_image_file, PathExt, IMAGE_EXTENSIONS};
pub use image::{open_image, open_mask};
pub use labels::{LabelList, Labels};
pub use loader::{imagenet_stats, AugmentOn, Batch, DataLoader, Stats, TtaView};
pub use order::Shard;
pub use show::{show_image, show_transforms, show_with_mask, show_with_points};
pub use tensors::{tensors_from_folder, Data, DataBunch, TensorLoader};
pub use transforms::{get_transforms, Augment, PaddingMode, Transforms};
pub use verify::{verify_images, VerifyReport};
