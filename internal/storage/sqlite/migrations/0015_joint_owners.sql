-- Resources that name several patients (a Coverage whose subscriber is
-- not its beneficiary, an Observation performed by another patient, a
-- group Appointment) belong to every patient they name: they are sealed
-- with a key of their own, owner "Joint/<h>" (h: a hash of the sorted
-- patient references), and this table lists the patients each joint
-- owner stands for. Authorization decides such a resource for each of
-- them; erasing any of them shreds the joint key. Pseudonymous ids only.

CREATE TABLE joint_owners (
	owner   TEXT NOT NULL,
	patient TEXT NOT NULL,
	PRIMARY KEY (owner, patient)
);
CREATE INDEX joint_owners_patient ON joint_owners (patient, owner);
