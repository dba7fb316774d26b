use super::*;

#[test]
fn rle_column_major_on_a_hand_computed_case() {
    // Image 2x3 (h=2, w=3); mask pixels (x=1,y=0), (1,1), (2,1):
    //   0 1 0
    //   0 1 1
    // Column-major: col0 = 0 0, col1 = 1 1, col2 = 0 1 → runs 2 zeros, 2 ones, 1 zero, 1 one.
    // CVAT: box left=1, top=0, right=2, bottom=1, row-major "10" "11" → runs 0, 1, 1, 2.
    let cvat = [0.0, 1.0, 1.0, 2.0, 1.0, 0.0, 2.0, 1.0];
    let coco = cvat_mask_to_coco(&cvat, 2, 3);
    assert_eq!(coco, vec![2, 2, 1, 1]);
    // pycocotools.mask.encode(...)['counts'] == b'221O'
    assert_eq!(coco_counts_to_string(&coco), "221O");
    assert_eq!(coco_counts_from_string("221O").unwrap(), coco);
    assert_eq!(
        coco_to_cvat_mask(&coco, 2, 3).unwrap().unwrap(),
        cvat.to_vec()
    );
    // Datumaro's sample: "06" over 2x3 = all ones.
    assert_eq!(coco_counts_from_string("06").unwrap(), vec![0, 6]);
    assert_eq!(
        coco_to_cvat_mask(&[0, 6], 2, 3).unwrap().unwrap(),
        vec![0.0, 6.0, 0.0, 0.0, 2.0, 1.0]
    );
    assert_eq!(coco_to_cvat_mask(&[6], 2, 3).unwrap(), None);
    assert_eq!(
        coco_to_cvat_mask(&[5, 2], 2, 3),
        Err(MaskError::CountsOverflow { h: 2, w: 3 })
    );
    assert_eq!(
        coco_counts_from_string("R"),
        Err(MaskError::TruncatedString)
    );
    assert_eq!(
        coco_counts_from_string("2 "),
        Err(MaskError::BadCharacter(1))
    );
}

#[test]
fn rle_matches_pycocotools_on_a_larger_mask() {
    // numpy: b = zeros((40, 30)); b[3:30, 5:20] = 1; b[10, 25] = 1; pycocotools.mask.encode(b)
    let s = "[6k0=000000000000000000000000000_6VOQO";
    let counts = coco_counts_from_string(s).unwrap();
    assert_eq!(counts.iter().sum::<u64>(), 40 * 30);
    assert_eq!(coco_counts_to_string(&counts), s);
    let cvat = coco_to_cvat_mask(&counts, 40, 30).unwrap().unwrap();
    assert_eq!(&cvat[cvat.len() - 4..], &[5.0, 3.0, 25.0, 29.0]);
    let ones: f64 = cvat[..cvat.len() - 4].iter().skip(1).step_by(2).sum();
    assert_eq!(ones, (27 * 15 + 1) as f64);
    // The box's runs cover exactly its pixels (datumaro's check_points for masks).
    let total: f64 = cvat[..cvat.len() - 4].iter().sum();
    assert_eq!(total, (21 * 27) as f64);
    crate::annotations::check_points(crate::annotations::ShapeType::Mask, &cvat).unwrap();
    assert_eq!(cvat_mask_to_coco(&cvat, 40, 30), counts);
    // Long counts and negative deltas survive the string form.
    let long = vec![1_000_000, 3, 999_000, 17, 5, 0, 12];
    assert_eq!(
        coco_counts_from_string(&coco_counts_to_string(&long)).unwrap(),
        long
    );
    // The bitmap agrees with pycocotools' area and toBbox.
    let b = Bitmap::from_counts(&counts, 30, 40).unwrap();
    assert_eq!(b.area(), 27 * 15 + 1);
    assert_eq!(b.bbox(), [5, 3, 21, 27]);
    assert!(b.get(25, 10) && !b.get(25, 11));
    assert_eq!(b.to_counts(), counts);
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    let a = v.as_array().unwrap();
    a.iter().map(|v| v.as_f64().unwrap()).collect()
}

/// Golden RLE strings from pycocotools 2.0.11 / Datumaro 1.13 (`tests/formats/mask_oracle.py`).
#[test]
fn rasteriser_matches_pycocotools_goldens() {
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/mask_golden.json")).unwrap();
    let h = golden["height"].as_u64().unwrap() as u32;
    let w = golden["width"].as_u64().unwrap() as u32;
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let p = floats(&case["points"]);
        let counts = match case["kind"].as_str().unwrap() {
            "polygon" => polygon_counts(&p, h, w),
            "dm_polygon" => dm_polygon_counts(&p, h, w),
            "box" => box_counts(p[0], p[1], p[2], p[3], h, w),
            "ellipse" => ellipse_counts(p[0], p[1], p[2], p[3], h, w),
            k => panic!("unknown kind {k}"),
        };
        assert_eq!(counts.iter().sum::<u64>(), (h * w) as u64, "case {i}");
        let s = coco_counts_to_string(&counts);
        let bitmap = Bitmap::from_counts(&counts, w, h).unwrap();
        let bbox: Vec<f64> = bitmap.bbox().iter().map(|&v| v as f64).collect();
        let want_bbox = floats(&case["bbox"]);
        if s != case["counts"].as_str().unwrap()
            || bitmap.area() != case["area"].as_u64().unwrap()
            || bbox != want_bbox
        {
            failures.push(format!(
                "case {i} ({}): {s} vs {}",
                case["kind"], case["counts"]
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn index_map_later_masks_win() {
    let a = Bitmap::polygon(&[0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0], 6, 5);
    let b = Bitmap::polygon(&[2.0, 2.0, 6.0, 2.0, 6.0, 5.0, 2.0, 5.0], 6, 5);
    let m = IndexMap::merge(6, 5, [(&a, 1), (&b, 2)]);
    assert_eq!(m.values[0], 1);
    assert_eq!(m.values[2 * 6 + 2], 2);
    assert_eq!(m.values[6 + 5], 0);
    let m = IndexMap::merge(6, 5, [(&b, 2), (&a, 1)]);
    assert_eq!(m.values[2 * 6 + 2], 1);
    assert_eq!(m.to_u8().unwrap().len(), 30);
}

#[test]
fn voc_colours_are_datumaros_generate_colormap() {
    assert_eq!(voc_color(0), [0, 0, 0]);
    assert_eq!(voc_color(1), [128, 0, 0]);
    assert_eq!(voc_color(2), [0, 128, 0]);
    assert_eq!(voc_color(15), [192, 128, 128]);
    assert_eq!(voc_color(255), [224, 224, 192]);
}
