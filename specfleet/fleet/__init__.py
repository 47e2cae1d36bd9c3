"""The fleet: EC2 user-data bootstrap, spot/ASG drain, a local fleet
emulator on moto, backlog autoscaling, region failover, capacity planning,
CloudFormation deploys and AMI baking. Modules are independent and light;
boto3-heavy ones import lazily where they can."""
