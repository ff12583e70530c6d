CREATE TABLE `outbox_dead_letters` (
	`package` text NOT NULL,
	`seq` integer NOT NULL,
	`id` text NOT NULL,
	`accepted_at_ms` integer NOT NULL,
	`event` blob NOT NULL,
	`status` integer NOT NULL,
	`reason` text NOT NULL,
	`log_index` integer NOT NULL,
	`at_ms` integer NOT NULL,
	PRIMARY KEY(`package`, `seq`)
);
--> statement-breakpoint
ALTER TABLE `outbox_packages` ADD `dead_letters_dropped` integer DEFAULT 0 NOT NULL;