//! fastai for Rust: the fast.ai lesson workflow (`ImageDataBunch`, `cnn_learner`, `fit_one_cycle`,
//! `lr_find`, interpretation) on libtorch through `tch`, made for Jupyter notebooks.
//!
//! In a notebook: `use fastai::vision::*;`

pub mod config;
pub mod data;
pub mod device;
pub mod display;
pub mod distributed;
pub mod error;
pub mod interpret;
pub mod learner;
pub mod models;
mod process_global;
pub mod widgets;

pub use config::{data_dir, home, lesson3_dir, models_dir, OfflineWeights};
pub use device::{device, device_info, DeviceInfo};
pub use error::{Error, Result};
/// The `image` crate (its `RgbImage` is what `open_image` returns), for notebooks that need it.
pub use image;
pub use widgets::{input, input_password};

/// Everything a vision notebook needs, in one import.
pub mod vision {
    pub use crate::config::{
        data_dir, fashion_mnist_dir, home, lesson3_dir, mnist_dir, models_dir, samples_dir,
        OfflineWeights,
    };
    pub use crate::data::{
        download_images, download_images_with, download_url, get_files, get_image_files,
        get_transforms, imagenet_stats, open_image, open_mask, show_image, show_transforms,
        show_with_mask, show_with_points, tensors_from_folder, untar_data, verify_images,
        AugmentOn, Batch, CsvOptions, Data, DataBunch, DataError, DataLoader, DataOptions,
        DownloadImagesOptions, DownloadImagesReport, ImageDataBunch, ImageList, ItemList,
        ItemLists, LabelLists, Labels, PaddingMode, PathExt, PointsItemList, SegmentationItemList,
        Stats, TensorLoader, Transforms, URLs,
    };
    pub use crate::device::{device, device_info, DeviceInfo};
    pub use crate::display::value::CellValue;
    pub use crate::display::{
        animation::{animate, Animation},
        plot::{plot, plot_xy, scatter, Plot},
        series::IntoSeries,
    };
    pub use crate::display::{clear_output, display, DisplayHandle, Rich};
    pub use crate::interpret::{ClassificationInterpretation, CleanerWidget, ImageCleaner};
    pub use crate::learner::callback::{
        AnyLearner, Callback, FitState, GradientAccumulation, GradientClipping, NanGuard,
        StopButton,
    };
    pub use crate::learner::export::{load_learner, Predictor};
    pub use crate::learner::interrupt::interrupted;
    pub use crate::learner::loss::{
        bce_with_logits_flat, cross_entropy_flat, mse_loss_flat, Activation, Loss,
    };
    pub use crate::learner::lr_find::{LrFind, Suggestion, SuggestionMethod};
    pub use crate::learner::metrics::{
        accuracy, accuracy_thresh, accuracy_void, dice, error_rate, exp_rmspe, fbeta,
        foreground_acc, mse, rmse, top_k_accuracy, Accumulator, Metric,
    };
    pub use crate::learner::mixed::MixedPrecision;
    pub use crate::learner::optim::{slice, slice_stop, Lr};
    pub use crate::learner::progress::ProgressCallback;
    pub use crate::learner::recorder::RecorderCallback;
    pub use crate::learner::schedule::{ConstantLr, OneCycle, OneCycleSchedule};
    pub use crate::learner::summary::Summary;
    pub use crate::learner::{
        cnn_learner, cnn_learner_with, unet_learner, unet_learner_with, Learner, LearnerOptions,
    };
    pub use crate::models::layers::{
        conv_layer, conv_layer_with, res_block, sequential, simple_cnn, ConvLayer, ConvLayerConfig,
        Flatten, ResBlock, Sequential,
    };
    pub use crate::models::{
        names as models, Arch, DynamicUnet, HeadInit, Hook, ImagenetClassifier, Model, Net,
        UnetOptions,
    };
    pub use tch::{self, nn, Device, Kind, Tensor};
}
