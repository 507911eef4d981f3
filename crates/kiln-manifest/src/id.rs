//! Typed positions: an image in `Project::images`, a stage in its image's `stages`. An
//! image id cannot pass for a stage id, and neither for a count.

use std::ops::{Index, IndexMut};

use schemars::JsonSchema;
use serde::Serialize;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
        #[serde(transparent)]
        #[schemars(inline)]
        pub struct $name(usize);

        impl $name {
            pub const fn new(index: usize) -> Self {
                Self(index)
            }

            /// The position, for indexing a plain list kept in the same order.
            pub const fn index(self) -> usize {
                self.0
            }
        }
    };
}

id! {
    /// An image of the project (an `image` or one of its variants).
    ImageId
}

id! {
    /// A stage of one image.
    StageId
}

/// One value per image of a project, indexed by `ImageId`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerImage<T>(Vec<T>);

impl<T> PerImage<T> {
    pub fn from_fn(count: usize, f: impl FnMut(ImageId) -> T) -> Self {
        Self((0..count).map(ImageId::new).map(f).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each image's id with its value, in image order.
    pub fn iter(&self) -> impl Iterator<Item = (ImageId, &T)> {
        self.0.iter().enumerate().map(|(i, v)| (ImageId::new(i), v))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
}

impl PerImage<bool> {
    /// The images whose value is `true`, in image order.
    pub fn chosen(&self) -> impl Iterator<Item = ImageId> + '_ {
        self.iter().filter(|(_, v)| **v).map(|(id, _)| id)
    }
}

impl<T> Index<ImageId> for PerImage<T> {
    type Output = T;

    fn index(&self, id: ImageId) -> &T {
        &self.0[id.index()]
    }
}

impl<T> IndexMut<ImageId> for PerImage<T> {
    fn index_mut(&mut self, id: ImageId) -> &mut T {
        &mut self.0[id.index()]
    }
}
