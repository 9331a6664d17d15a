-- qlab results database, schema version 1 (PRAGMA user_version = 1).
--
-- Table, view and column names are fixed by PRODUCT.md §6: scripts and users' sqlite3
-- sessions depend on them. Later versions only ADD (new migrate-N.sql steps in
-- daemon/store/migrate.c); they never rename or drop.
--
-- Conventions
--   * Times are TEXT, ISO 8601 in UTC with milliseconds ('2026-12-04T20:11:05.123Z'),
--     so they sort as text and read naturally in the sqlite3 shell.
--   * status is one of 'pending', 'running', 'done', 'failed', 'cancelled'.
--   * A column that does not apply is NULL (group_size of a per-tensor run, percentile of
--     a minmax run, act_bits of a weight-only run), never a magic 0.
--   * config_hash is 16 lowercase hex digits: FNV-1a 64 of the run's canonical
--     configuration string (runs.config); see daemon/config/qlab-experiment.h.
--   * Histogram counts are a BLOB of nbins little-endian unsigned 32-bit integers
--     (length(counts) = 4 * nbins); bin i covers [lo + i*w, lo + (i+1)*w), w = (hi-lo)/nbins,
--     the last bin also holds hi. Values are errors: quantized minus original.
--
-- The daemon (qlabd, or `qlab run`) is the only writer. Readers open the file read-only;
-- WAL mode (set when the writer opens the database; it is persistent) gives them a
-- consistent snapshot per transaction while the writer works.

CREATE TABLE experiments (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    yaml           TEXT    NOT NULL,          -- the experiment file as submitted
    yaml_path      TEXT,                      -- where it was read from (absolute)
    config_hash    TEXT    NOT NULL,          -- FNV-1a 64 of the canonical expanded grid
    model_path     TEXT    NOT NULL,          -- absolute path of the .safetensors file
    model_sha256   TEXT,                      -- 64 hex digits, set when the model is loaded
    dataset        TEXT,                      -- folder (or file list) of the IDX data
    status         TEXT    NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending','running','done','failed','cancelled')),
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    started_at     TEXT,
    finished_at    TEXT,
    fp32_accuracy  REAL,                      -- FP32 top-1 on the test set, percent
    fp32_bytes     INTEGER,                   -- FP32 model size: 4 bytes per parameter
    runs_total     INTEGER NOT NULL DEFAULT 0,
    runs_done      INTEGER NOT NULL DEFAULT 0, -- runs with status 'done'   (kept by triggers)
    runs_failed    INTEGER NOT NULL DEFAULT 0, -- runs with status 'failed' (kept by triggers)
    calib_samples  INTEGER,                   -- calibration images drawn from the train set
    calib_seed     INTEGER,
    workers        INTEGER,                   -- requested worker count (NULL: one per core)
    qlab_version   TEXT,
    kernel         TEXT,                      -- SIMD variant of the daemon ('avx2', 'scalar')
    error          TEXT                       -- why the experiment failed, if it did
);

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    experiment_id   INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,         -- position in the expanded grid, from 0
    bits            INTEGER NOT NULL,         -- weight bit-width
    scheme          TEXT    NOT NULL CHECK (scheme IN ('symmetric','asymmetric')),
    granularity     TEXT    NOT NULL CHECK (granularity IN ('tensor','channel','group')),
    group_size      INTEGER,                  -- G for granularity 'group', else NULL
    calibration     TEXT    NOT NULL
                    CHECK (calibration IN ('minmax','percentile','mse','entropy')),
    percentile      REAL,                     -- P for calibration 'percentile', else NULL
    act_bits        INTEGER,                  -- activation bits; NULL = FP32 activations
    act_calibration TEXT                      -- NULL when act_bits is NULL
                    CHECK (act_calibration IS NULL OR
                           act_calibration IN ('minmax','percentile','mse','entropy')),
    act_percentile  REAL,
    overrides       TEXT,                     -- JSON object {layer: {...}} or NULL
    config          TEXT    NOT NULL,         -- canonical configuration string (hashed)
    config_hash     TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending','running','done','failed','cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0, -- times claimed (> 1 after a crash-resume)
    accuracy        REAL,                     -- top-1 on the test set, percent (0..100)
    accuracy_delta  REAL,                     -- accuracy - fp32_accuracy, percentage points
    weight_bytes    INTEGER,                  -- quantized weights + scales + zero points
    total_bytes     INTEGER,                  -- weight_bytes + FP32 biases and FP32 layers
    compression     REAL,                     -- experiments.fp32_bytes / total_bytes
    bits_per_weight REAL,                     -- 8 * weight_bytes / weight parameters
    sqnr_db         REAL,                     -- over all quantized weights
    mse             REAL,
    eval_ms         REAL,                     -- wall time of the test-set evaluation
    kernel          TEXT,                     -- SIMD variant that ran this run
    simulated       INTEGER CHECK (simulated IN (0,1)), -- 1: fake-quant, 0: integer kernels
    started_at      TEXT,
    finished_at     TEXT,
    error           TEXT,
    manifest        TEXT,                     -- JSON reproducibility manifest (see store)
    UNIQUE (experiment_id, config_hash)       -- resume can never double a run
);

CREATE TABLE layer_metrics (
    run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,         -- order of the layer in the model, from 0
    layer           TEXT    NOT NULL,         -- 'fc1', 'conv2', ...
    kind            TEXT    NOT NULL,         -- 'linear', 'conv2d', ...
    params          INTEGER,                  -- weight parameters
    bytes           INTEGER,                  -- honest bytes of this layer (PRODUCT §3)
    bits            INTEGER,                  -- NULL: layer kept in FP32
    scheme          TEXT,
    granularity     TEXT,
    group_size      INTEGER,
    weight_mse      REAL,
    weight_sqnr_db  REAL,
    max_abs_error   REAL,
    cosine          REAL,
    clip_fraction   REAL,                     -- fraction of weights clipped by calibration
    output_sqnr_db  REAL,                     -- layer output vs the FP32 model's
    output_mse      REAL,
    output_cosine   REAL,
    PRIMARY KEY (run_id, layer)
) WITHOUT ROWID;

CREATE TABLE histograms (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    layer   TEXT    NOT NULL,
    tensor  TEXT    NOT NULL CHECK (tensor IN ('weight','output')),
    lo      REAL    NOT NULL,
    hi      REAL    NOT NULL,
    nbins   INTEGER NOT NULL CHECK (nbins > 0),
    counts  BLOB    NOT NULL CHECK (length(counts) = 4 * nbins), -- u32 little-endian
    PRIMARY KEY (run_id, layer, tensor)
);

-- Claiming the next pending run scans (status, rowid); the CLI and GUI list runs of one
-- experiment, optionally by status; the frontier walks done runs of one experiment by size.
CREATE INDEX runs_by_status     ON runs(status);
CREATE INDEX runs_by_experiment ON runs(experiment_id, status);
CREATE INDEX runs_done_by_bytes ON runs(experiment_id, total_bytes, accuracy)
    WHERE status = 'done';
CREATE INDEX experiments_by_status ON experiments(status);

-- Progress counters follow the runs' status, whoever changes it.
CREATE TRIGGER runs_status_counts AFTER UPDATE OF status ON runs
WHEN old.status <> new.status
BEGIN
    UPDATE experiments SET
        runs_done   = runs_done   + (new.status = 'done')   - (old.status = 'done'),
        runs_failed = runs_failed + (new.status = 'failed') - (old.status = 'failed')
    WHERE id = new.experiment_id;
END;

CREATE TRIGGER runs_insert_counts AFTER INSERT ON runs
BEGIN
    UPDATE experiments SET
        runs_total  = runs_total + 1,
        runs_done   = runs_done   + (new.status = 'done'),
        runs_failed = runs_failed + (new.status = 'failed')
    WHERE id = new.experiment_id;
END;

-- Pareto frontier of each experiment's done runs: a run is on it when no other done run
-- of the same experiment has accuracy >= and total_bytes <= with one strictly better.
-- With best_lt = max accuracy over runs strictly smaller and best_le = max accuracy over
-- runs smaller or equal (the run's own size included), a run is dominated exactly when
-- best_lt >= accuracy or best_le > accuracy. Runs with identical (accuracy, total_bytes)
-- are all kept, since neither is strictly better.
-- Both maxima are running window aggregates in index order (runs_done_by_bytes covers
-- them, and `WHERE experiment_id = ?` is pushed into the window's partition): O(n), about
-- 0.3 s for 100,000 runs. The textbook NOT EXISTS is O(n^2) when most runs are on the
-- front (over 60 s for 100,000), and SQLite evaluates an EXCLUDE GROUP frame
-- quadratically too; "1 PRECEDING" on the integer total_bytes means "strictly smaller".
-- Only the front's rows are then joined back to runs for their other columns.
CREATE VIEW frontier AS
SELECT r.id, f.experiment_id, r.seq, r.bits, r.scheme, r.granularity, r.group_size,
       r.calibration, r.percentile, r.act_bits, r.act_calibration, r.act_percentile,
       r.overrides, r.config, r.config_hash, r.status, r.attempts, f.accuracy,
       r.accuracy_delta, r.weight_bytes, f.total_bytes, r.compression, r.bits_per_weight,
       r.sqnr_db, r.mse, r.eval_ms, r.kernel, r.simulated, r.started_at, r.finished_at,
       r.error, r.manifest
FROM (
    SELECT id, experiment_id, accuracy, total_bytes,
           max(accuracy) OVER (PARTITION BY experiment_id ORDER BY total_bytes
               RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS best_lt,
           max(accuracy) OVER (PARTITION BY experiment_id ORDER BY total_bytes
               RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS best_le
    FROM runs
    WHERE status = 'done' AND accuracy IS NOT NULL AND total_bytes IS NOT NULL
) AS f
JOIN runs AS r ON r.id = f.id
WHERE (f.best_lt IS NULL OR f.best_lt < f.accuracy) AND f.best_le <= f.accuracy;
