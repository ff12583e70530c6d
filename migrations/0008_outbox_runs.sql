CREATE TABLE `outbox_runs` (
	`package` text NOT NULL,
	`first_seq` integer NOT NULL,
	`count` integer NOT NULL,
	`log_index` integer NOT NULL,
	`position` integer NOT NULL,
	PRIMARY KEY(`package`, `first_seq`)
);
