-- The schema of vpsctl at commit f15dd45 (the release before migrations), on postgresql: the
-- statements SQLModel.metadata.create_all emitted from that commit's orchestrator/models.py.
-- Test data for tests/db/test_migrations.py; never edit (it is what existing installations have).

CREATE TYPE role AS ENUM ('customer', 'support', 'automation');

CREATE TYPE vpsstatus AS ENUM ('building', 'running', 'stopped', 'suspended', 'cut_off', 'error', 'deleting', 'deleted');

CREATE TYPE jobstatus AS ENUM ('queued', 'running', 'succeeded', 'failed');

CREATE TABLE customer (
	id SERIAL NOT NULL,
	name VARCHAR(100) NOT NULL,
	email VARCHAR(254) NOT NULL,
	language VARCHAR(5) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_customer_name ON customer (name);

CREATE TABLE host (
	id SERIAL NOT NULL,
	name VARCHAR(64) NOT NULL,
	uri VARCHAR(500) NOT NULL,
	site VARCHAR(64) NOT NULL,
	state VARCHAR(16) NOT NULL,
	domain_type VARCHAR(16) NOT NULL,
	vcpus INTEGER NOT NULL,
	memory_mib INTEGER NOT NULL,
	disk_gib INTEGER NOT NULL,
	pool_name VARCHAR(64) NOT NULL,
	network_name VARCHAR(64) NOT NULL,
	updated_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_host_name ON host (name);

CREATE TABLE image (
	name VARCHAR(64) NOT NULL,
	os VARCHAR(100) NOT NULL,
	os_family VARCHAR(32) NOT NULL,
	format VARCHAR(16) NOT NULL,
	size_bytes INTEGER NOT NULL,
	virtual_size_bytes INTEGER NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	path VARCHAR(1000) NOT NULL,
	min_disk_gib INTEGER NOT NULL,
	min_memory_mib INTEGER NOT NULL,
	description VARCHAR(500) NOT NULL,
	built_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (name)
);

CREATE TABLE audit (
	id SERIAL NOT NULL,
	at TIMESTAMP WITHOUT TIME ZONE,
	vps_id VARCHAR(36),
	actor VARCHAR(100) NOT NULL,
	action VARCHAR(64) NOT NULL,
	detail VARCHAR(500) NOT NULL,
	PRIMARY KEY (id)
);

CREATE INDEX ix_audit_vps_id ON audit (vps_id);

CREATE TABLE apitoken (
	id SERIAL NOT NULL,
	token_hash VARCHAR(64) NOT NULL,
	role role NOT NULL,
	customer_id INTEGER,
	label VARCHAR(100) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE,
	revoked_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(customer_id) REFERENCES customer (id)
);

CREATE UNIQUE INDEX ix_apitoken_token_hash ON apitoken (token_hash);

CREATE TABLE vps (
	id VARCHAR(36) NOT NULL,
	name VARCHAR(63) NOT NULL,
	customer_id INTEGER NOT NULL,
	host_id INTEGER,
	image VARCHAR(64) NOT NULL,
	vcpus INTEGER NOT NULL,
	memory_mib INTEGER NOT NULL,
	disk_gib INTEGER NOT NULL,
	max_vcpus INTEGER NOT NULL,
	max_memory_mib INTEGER NOT NULL,
	status vpsstatus NOT NULL,
	root_generation INTEGER NOT NULL,
	cut_off BOOLEAN NOT NULL,
	cut_off_reason VARCHAR(64),
	mail_blocked BOOLEAN NOT NULL,
	suspend_reason VARCHAR(32),
	suspended_by VARCHAR(16),
	task VARCHAR(32),
	mac VARCHAR(17) NOT NULL,
	data_disks JSON NOT NULL,
	ssh_authorized_keys JSON NOT NULL,
	ssh_host_keys JSON NOT NULL,
	addresses JSON NOT NULL,
	error VARCHAR(2000),
	created_at TIMESTAMP WITHOUT TIME ZONE,
	updated_at TIMESTAMP WITHOUT TIME ZONE,
	deleted_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(customer_id) REFERENCES customer (id),
	FOREIGN KEY(host_id) REFERENCES host (id)
);

CREATE INDEX ix_vps_name ON vps (name);

CREATE INDEX ix_vps_host_id ON vps (host_id);

CREATE INDEX ix_vps_customer_id ON vps (customer_id);

CREATE INDEX ix_vps_status ON vps (status);

CREATE TABLE maintenance (
	id VARCHAR(36) NOT NULL,
	host_id INTEGER,
	starts_at TIMESTAMP WITHOUT TIME ZONE,
	duration_minutes INTEGER NOT NULL,
	reason VARCHAR(500) NOT NULL,
	created_by VARCHAR(100) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(host_id) REFERENCES host (id)
);

CREATE INDEX ix_maintenance_starts_at ON maintenance (starts_at);

CREATE TABLE hostimage (
	host_id INTEGER NOT NULL,
	image_name VARCHAR(64) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	volume VARCHAR(200) NOT NULL,
	path VARCHAR(1000) NOT NULL,
	uploaded_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (host_id, image_name, sha256),
	FOREIGN KEY(host_id) REFERENCES host (id)
);

CREATE TABLE outbox (
	id SERIAL NOT NULL,
	customer_id INTEGER,
	to_address VARCHAR(254) NOT NULL,
	language VARCHAR(5) NOT NULL,
	template VARCHAR(64) NOT NULL,
	subject VARCHAR(500) NOT NULL,
	body_text VARCHAR NOT NULL,
	context JSON NOT NULL,
	vps_id VARCHAR(36),
	job_id VARCHAR(36),
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_at TIMESTAMP WITHOUT TIME ZONE,
	last_error VARCHAR(2000),
	message_id VARCHAR(300),
	created_at TIMESTAMP WITHOUT TIME ZONE,
	sent_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(customer_id) REFERENCES customer (id)
);

CREATE INDEX ix_outbox_vps_id ON outbox (vps_id);

CREATE INDEX ix_outbox_status ON outbox (status);

CREATE INDEX ix_outbox_customer_id ON outbox (customer_id);

CREATE INDEX ix_outbox_next_attempt_at ON outbox (next_attempt_at);

CREATE INDEX ix_outbox_job_id ON outbox (job_id);

CREATE TABLE job (
	id VARCHAR(36) NOT NULL,
	vps_id VARCHAR,
	kind VARCHAR(32) NOT NULL,
	params JSON NOT NULL,
	status jobstatus NOT NULL,
	step VARCHAR(64),
	steps_done JSON NOT NULL,
	steps_total INTEGER NOT NULL,
	attempts INTEGER NOT NULL,
	max_attempts INTEGER NOT NULL,
	lease_owner VARCHAR(100),
	lease_expires_at TIMESTAMP WITHOUT TIME ZONE,
	error VARCHAR(4000),
	requested_by VARCHAR(100) NOT NULL,
	idempotency_key VARCHAR(200),
	created_at TIMESTAMP WITHOUT TIME ZONE,
	not_before TIMESTAMP WITHOUT TIME ZONE,
	started_at TIMESTAMP WITHOUT TIME ZONE,
	finished_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	UNIQUE (requested_by, idempotency_key),
	FOREIGN KEY(vps_id) REFERENCES vps (id)
);

CREATE INDEX ix_job_vps_id ON job (vps_id);

CREATE INDEX ix_job_status ON job (status);

CREATE INDEX ix_job_created_at ON job (created_at);

CREATE TABLE maintenancevps (
	maintenance_id VARCHAR(36) NOT NULL,
	vps_id VARCHAR(36) NOT NULL,
	starts_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (maintenance_id, vps_id),
	FOREIGN KEY(maintenance_id) REFERENCES maintenance (id),
	FOREIGN KEY(vps_id) REFERENCES vps (id)
);

CREATE INDEX ix_maintenancevps_starts_at ON maintenancevps (starts_at);

CREATE TABLE compromise (
	id VARCHAR(36) NOT NULL,
	vps_id VARCHAR(36) NOT NULL,
	reported_by VARCHAR(100) NOT NULL,
	reported_at TIMESTAMP WITHOUT TIME ZONE,
	details VARCHAR(2000) NOT NULL,
	notice_outbox_id INTEGER,
	customer_agreement_at TIMESTAMP WITHOUT TIME ZONE,
	customer_agreement_note VARCHAR(500) NOT NULL,
	resolved_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(vps_id) REFERENCES vps (id)
);

CREATE INDEX ix_compromise_vps_id ON compromise (vps_id);

CREATE TABLE backup (
	id VARCHAR(36) NOT NULL,
	vps_id VARCHAR(36) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	pool VARCHAR(64) NOT NULL,
	volume VARCHAR(200) NOT NULL,
	size_bytes INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	note VARCHAR(500) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(vps_id) REFERENCES vps (id)
);

CREATE INDEX ix_backup_vps_id ON backup (vps_id);

CREATE TABLE jobevent (
	id SERIAL NOT NULL,
	job_id VARCHAR(36) NOT NULL,
	vps_id VARCHAR(36),
	at TIMESTAMP WITHOUT TIME ZONE,
	step VARCHAR(64) NOT NULL,
	status VARCHAR(16) NOT NULL,
	message VARCHAR(2000) NOT NULL,
	actor VARCHAR(100) NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(job_id) REFERENCES job (id)
);

CREATE INDEX ix_jobevent_job_id ON jobevent (job_id);

CREATE INDEX ix_jobevent_vps_id ON jobevent (vps_id);
