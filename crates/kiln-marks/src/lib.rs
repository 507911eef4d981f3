//! How kiln marks what it puts on an engine, for the scheduler that writes the marks
//! and the image commands that read them: content tags (which build is which), label
//! names, pins (the leases of running builds), and the project an image belongs to.

pub mod labels;
pub mod pin;
pub mod tags;
