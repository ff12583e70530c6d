CREATE TABLE `raft_applied` (
	`id` integer PRIMARY KEY NOT NULL,
	`applied_index` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `raft_entries` (
	`idx` integer PRIMARY KEY NOT NULL,
	`term` integer NOT NULL,
	`type` integer NOT NULL,
	`data` blob NOT NULL,
	`checksum` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `raft_hard_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`term` integer NOT NULL,
	`voted_for` text,
	`commit_index` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `raft_snapshot` (
	`id` integer PRIMARY KEY NOT NULL,
	`idx` integer NOT NULL,
	`term` integer NOT NULL,
	`conf_state` text NOT NULL,
	`data` blob NOT NULL,
	`checksum` integer NOT NULL
);
