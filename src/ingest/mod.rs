//! Ingesting uploaded media safely (being written).
