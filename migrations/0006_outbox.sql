CREATE TABLE `outbox_events` (
	`package` text NOT NULL,
	`seq` integer NOT NULL,
	`document` text NOT NULL,
	PRIMARY KEY(`package`, `seq`)
);
--> statement-breakpoint
CREATE TABLE `outbox_keys` (
	`ord` integer PRIMARY KEY NOT NULL,
	`key` text NOT NULL,
	`ids` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `outbox_packages` (
	`package` text PRIMARY KEY NOT NULL,
	`next_seq` integer NOT NULL,
	`cursor` integer NOT NULL
);
