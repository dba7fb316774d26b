//! The catalogue: every format CVAT 2.73 lists (spec `formats.md` §2, §3), what it is called
//! and which of its sides frameserver implements. It is the one place names are matched:
//! `GET /api/server/annotation/formats` lists it, and export and import requests look their
//! format up here (as `image` keeps `ImageFormat::all()` and `can_read`/`can_write`).
//!
//! Adding a format is one module implementing [`Exporter`] and/or [`Importer`], and its two
//! fields in [`CATALOGUE`].

use super::{cvat, datumaro, voc, yolo, Exporter, Importer};

/// CVAT's `DimensionType`: which jobs a format applies to (the web UI offers a format only for
/// jobs of the same dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Images and video.
    D2,
    /// Point clouds.
    D3,
}

impl Dimension {
    /// CVAT's value: `"2d"` or `"3d"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::D2 => "2d",
            Dimension::D3 => "3d",
        }
    }
}

/// How CVAT registers a format's importer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSide {
    /// The importer's name without the version: the exporter's, except for CVAT XML ("CVAT").
    pub name: &'static str,
    /// The file kinds it accepts as listed, e.g. `"JSON, ZIP"`.
    pub ext: &'static str,
    /// Other full names clients send for it (the SDK's default import format is
    /// `"CVAT XML 1.1"`).
    pub aliases: &'static [&'static str],
}

/// What CVAT shows of a format, whether or not frameserver implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatInfo {
    /// The exporter's name without the version, e.g. `"CVAT for images"`.
    pub name: &'static str,
    /// E.g. `"1.1"`.
    pub version: &'static str,
    /// The export's kind as listed: `"ZIP"` for every format.
    pub ext: &'static str,
    pub dimension: Dimension,
    /// CVAT's importer of this format; `None` for export-only formats (Ultralytics YOLO
    /// Detection Track imports as Detection).
    pub import: Option<ImportSide>,
}

impl FormatInfo {
    /// The export name clients send: `"{name} {version}"`.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// The import name clients send (`"CVAT 1.1"` for both CVAT XML formats), if CVAT has an
    /// importer of this format.
    pub fn import_name(&self) -> Option<String> {
        self.import.map(|i| format!("{} {}", i.name, self.version))
    }

    /// Whether `name` (trimmed) names this format's importer: its import name or an alias.
    fn is_import_name(&self, name: &str) -> bool {
        self.import.is_some_and(|i| {
            i.aliases.contains(&name)
                || name
                    .strip_prefix(i.name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .is_some_and(|v| v == self.version)
        })
    }

    /// Whether `name` (trimmed) is this format's export name.
    fn is_export_name(&self, name: &str) -> bool {
        name.strip_prefix(self.name)
            .and_then(|rest| rest.strip_prefix(' '))
            .is_some_and(|v| v == self.version)
    }
}

/// A catalogue entry: the format as CVAT lists it, and what frameserver implements of it.
pub struct Registered {
    pub info: FormatInfo,
    /// `None` while the export is not implemented (listed as disabled).
    pub exporter: Option<&'static dyn Exporter>,
    /// `None` while the import is not implemented, or when CVAT has none.
    pub importer: Option<&'static dyn Importer>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("info", &self.info)
            .field("exporter", &self.exporter.is_some())
            .field("importer", &self.importer.is_some())
            .finish()
    }
}

/// Why a format name was not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No format of CVAT's has that name.
    #[error("unknown {side} format '{name}'; see /api/server/annotation/formats")]
    Unknown { side: &'static str, name: String },
    /// CVAT has it, frameserver does not implement it yet.
    #[error("the {side} format '{name}' is not implemented by this server yet; see /api/server/annotation/formats")]
    NotImplemented { side: &'static str, name: String },
}

/// A format found by name, with the side that was asked for.
#[derive(Clone, Copy)]
pub struct Found<T: ?Sized + 'static> {
    pub info: &'static FormatInfo,
    pub side: &'static T,
}

const ZIP: &str = "ZIP";

/// An importer registered under the exporter's name, taking a zip.
const fn zip_import() -> Option<ImportSide> {
    Some(ImportSide {
        name: "",
        ext: ZIP,
        aliases: &[],
    })
}

/// An importer registered under the exporter's name, taking a zip or a bare `.json`.
const fn json_import() -> Option<ImportSide> {
    Some(ImportSide {
        name: "",
        ext: "JSON, ZIP",
        aliases: &[],
    })
}

const CVAT_IMPORT: Option<ImportSide> = Some(ImportSide {
    name: "CVAT",
    ext: "XML, ZIP",
    aliases: &["CVAT XML 1.1"],
});

/// A 2D format whose importer has the exporter's name.
const fn d2(name: &'static str, version: &'static str, import: Option<ImportSide>) -> FormatInfo {
    let import = match import {
        Some(i) if i.name.is_empty() => Some(ImportSide { name, ..i }),
        other => other,
    };
    FormatInfo {
        name,
        version,
        ext: ZIP,
        dimension: Dimension::D2,
        import,
    }
}

/// A 3D format (listed, not implemented: frameserver serves 2D tasks).
const fn d3(name: &'static str, version: &'static str, import: Option<ImportSide>) -> FormatInfo {
    FormatInfo {
        dimension: Dimension::D3,
        ..d2(name, version, import)
    }
}

const fn listed(info: FormatInfo) -> Registered {
    Registered {
        info,
        exporter: None,
        importer: None,
    }
}

static CVAT_IMAGES: cvat::CvatXml = cvat::CvatXml::IMAGES;
static CVAT_VIDEO: cvat::CvatXml = cvat::CvatXml::VIDEO;
static DATUMARO: datumaro::Datumaro = datumaro::Datumaro::DEFAULT;
static YOLO: yolo::Yolo = yolo::Yolo;
static VOC: voc::Voc = voc::Voc;
static SEGMENTATION_MASK: voc::SegmentationMask = voc::SegmentationMask;

/// Every format CVAT 2.73 lists, in its registry's order: the 29 2D display names, then the 3D
/// ones.
pub static CATALOGUE: &[Registered] = &[
    Registered {
        info: d2("CVAT for video", "1.1", CVAT_IMPORT),
        exporter: Some(&CVAT_VIDEO),
        importer: Some(&CVAT_VIDEO),
    },
    Registered {
        info: d2("CVAT for images", "1.1", CVAT_IMPORT),
        exporter: Some(&CVAT_IMAGES),
        importer: Some(&CVAT_IMAGES),
    },
    Registered {
        info: d2("Datumaro", "1.0", json_import()),
        exporter: Some(&DATUMARO),
        importer: Some(&DATUMARO),
    },
    listed(d2("COCO", "1.0", json_import())),
    listed(d2("COCO Keypoints", "1.0", json_import())),
    Registered {
        info: d2("PASCAL VOC", "1.1", zip_import()),
        exporter: Some(&VOC),
        importer: Some(&VOC),
    },
    Registered {
        info: d2("Segmentation mask", "1.1", zip_import()),
        exporter: Some(&SEGMENTATION_MASK),
        importer: Some(&SEGMENTATION_MASK),
    },
    Registered {
        info: d2("YOLO", "1.1", zip_import()),
        exporter: Some(&YOLO),
        importer: Some(&YOLO),
    },
    listed(d2("Ultralytics YOLO Detection", "1.0", zip_import())),
    listed(d2("Ultralytics YOLO Detection Track", "1.0", None)),
    listed(d2("Ultralytics YOLO Segmentation", "1.0", zip_import())),
    listed(d2(
        "Ultralytics YOLO Oriented Bounding Boxes",
        "1.0",
        zip_import(),
    )),
    listed(d2("Ultralytics YOLO Pose", "1.0", zip_import())),
    listed(d2("Ultralytics YOLO Classification", "1.0", zip_import())),
    listed(d2("LabelMe", "3.0", zip_import())),
    listed(d2("MOT", "1.1", zip_import())),
    listed(d2("MOTS PNG", "1.0", zip_import())),
    listed(d2("ImageNet", "1.0", zip_import())),
    listed(d2("CamVid", "1.0", zip_import())),
    listed(d2("WiderFace", "1.0", zip_import())),
    listed(d2("VGGFace2", "1.0", zip_import())),
    listed(d2("Market-1501", "1.0", zip_import())),
    listed(d2("ICDAR Recognition", "1.0", zip_import())),
    listed(d2("ICDAR Localization", "1.0", zip_import())),
    listed(d2("ICDAR Segmentation", "1.0", zip_import())),
    listed(d2("Open Images V6", "1.0", zip_import())),
    listed(d2("Cityscapes", "1.0", zip_import())),
    listed(d2("KITTI", "1.0", zip_import())),
    listed(d2("LFW", "1.0", zip_import())),
    listed(d3("Sly Point Cloud Format", "1.0", zip_import())),
    listed(d3("Kitti Raw Format", "1.0", zip_import())),
    listed(d3("Datumaro 3D", "1.0", json_import())),
];

/// The exporter named `name` (its display name, e.g. `"COCO 1.0"`).
pub fn exporter(name: &str) -> Result<Found<dyn Exporter>, LookupError> {
    let name = name.trim();
    let r = CATALOGUE
        .iter()
        .find(|r| r.info.is_export_name(name))
        .ok_or_else(|| LookupError::Unknown {
            side: "export",
            name: name.to_owned(),
        })?;
    let side = r.exporter.ok_or_else(|| LookupError::NotImplemented {
        side: "export",
        name: name.to_owned(),
    })?;
    Ok(Found {
        info: &r.info,
        side,
    })
}

/// The importer named `name`: its import name (`"CVAT 1.1"`), an alias (`"CVAT XML 1.1"`), or
/// the export name of a format whose importer has another name (`"CVAT for images 1.1"`, as
/// CVAT's own clients sometimes send).
pub fn importer(name: &str) -> Result<Found<dyn Importer>, LookupError> {
    let name = name.trim();
    let found = CATALOGUE
        .iter()
        .filter(|r| r.info.import.is_some())
        .find(|r| r.info.is_import_name(name))
        .or_else(|| {
            CATALOGUE
                .iter()
                .filter(|r| r.info.import.is_some())
                .find(|r| r.info.is_export_name(name))
        })
        .ok_or_else(|| LookupError::Unknown {
            side: "import",
            name: name.to_owned(),
        })?;
    // Another entry may share the importer's name and implement it (both CVAT XML formats).
    let side = CATALOGUE
        .iter()
        .filter(|r| r.info.import_name() == found.info.import_name())
        .find_map(|r| r.importer)
        .ok_or_else(|| LookupError::NotImplemented {
            side: "import",
            name: name.to_owned(),
        })?;
    Ok(Found {
        info: &found.info,
        side,
    })
}

/// One entry of `GET /api/server/annotation/formats`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    pub name: String,
    pub ext: &'static str,
    pub version: &'static str,
    pub enabled: bool,
    pub dimension: &'static str,
}

/// The exporters CVAT lists, enabled when implemented.
pub fn exporters() -> Vec<Listed> {
    CATALOGUE
        .iter()
        .map(|r| Listed {
            name: r.info.display_name(),
            ext: r.info.ext,
            version: r.info.version,
            enabled: r.exporter.is_some(),
            dimension: r.info.dimension.as_str(),
        })
        .collect()
}

/// The importers CVAT lists (one per import name), enabled when implemented.
pub fn importers() -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    for r in CATALOGUE {
        let (Some(side), Some(name)) = (r.info.import, r.info.import_name()) else {
            continue;
        };
        match out.iter_mut().find(|l| l.name == name) {
            Some(l) => l.enabled |= r.importer.is_some(),
            None => out.push(Listed {
                name,
                ext: side.ext,
                version: r.info.version,
                enabled: r.importer.is_some(),
                dimension: r.info.dimension.as_str(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvat_lists_29_two_d_names_and_one_cvat_importer() {
        let names: Vec<String> = exporters()
            .into_iter()
            .filter(|l| l.dimension == "2d")
            .map(|l| l.name)
            .collect();
        assert_eq!(names.len(), 29, "{names:?}");
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let imports = importers();
        let cvat: Vec<_> = imports
            .iter()
            .filter(|l| l.name.starts_with("CVAT"))
            .collect();
        assert_eq!(cvat.len(), 1);
        assert_eq!(
            (cvat[0].name.as_str(), cvat[0].ext),
            ("CVAT 1.1", "XML, ZIP")
        );
        assert!(cvat[0].enabled);
        // Detection Track is export-only: 29 exporters, 27 importers (CVAT XML shares one).
        assert_eq!(imports.iter().filter(|l| l.dimension == "2d").count(), 27);
    }

    #[test]
    fn lookup_by_name_alias_and_trimmed() {
        assert_eq!(
            exporter(" CVAT for images 1.1").unwrap().info.name,
            "CVAT for images"
        );
        assert_eq!(
            importer("CVAT 1.1").unwrap().info.import_name().unwrap(),
            "CVAT 1.1"
        );
        assert!(importer("CVAT XML 1.1").is_ok());
        assert!(importer("CVAT for video 1.1").is_ok());
        assert_eq!(importer("Datumaro 1.0").unwrap().info.name, "Datumaro");
        assert_eq!(
            exporter("CVAT 1.1").err(),
            Some(LookupError::Unknown {
                side: "export",
                name: "CVAT 1.1".into()
            })
        );
        assert!(matches!(
            exporter("COCO 1.0"),
            Err(LookupError::NotImplemented { .. })
        ));
        assert!(matches!(
            importer("Ultralytics YOLO Detection Track 1.0"),
            Err(LookupError::Unknown { .. })
        ));
        assert!(matches!(
            exporter("COCO 1.1"),
            Err(LookupError::Unknown { .. })
        ));
    }

    #[test]
    fn implemented_sides_are_enabled() {
        let ex = exporters();
        let enabled: Vec<&str> = ex
            .iter()
            .filter(|l| l.enabled)
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(
            enabled,
            [
                "CVAT for video 1.1",
                "CVAT for images 1.1",
                "Datumaro 1.0",
                "PASCAL VOC 1.1",
                "Segmentation mask 1.1",
                "YOLO 1.1"
            ]
        );
        let im = importers();
        let enabled: Vec<&str> = im
            .iter()
            .filter(|l| l.enabled)
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(
            enabled,
            [
                "CVAT 1.1",
                "Datumaro 1.0",
                "PASCAL VOC 1.1",
                "Segmentation mask 1.1",
                "YOLO 1.1"
            ]
        );
    }
}
