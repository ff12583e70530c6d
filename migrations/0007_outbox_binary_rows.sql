PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_outbox_events` (
	`package` text NOT NULL,
	`seq` integer NOT NULL,
	`document` blob NOT NULL,
	PRIMARY KEY(`package`, `seq`)
);
--> statement-breakpoint
INSERT INTO `__new_outbox_events`("package", "seq", "document") SELECT "package", "seq", "document" FROM `outbox_events`;--> statement-breakpoint
DROP TABLE `outbox_events`;--> statement-breakpoint
ALTER TABLE `__new_outbox_events` RENAME TO `outbox_events`;--> statement-breakpoint
PRAGMA foreign_keys=ON;